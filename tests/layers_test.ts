/**
 * The import graph keeps its layers, read from `deno info --json` over every TypeScript file
 * of the repository (static, dynamic and type-only imports alike): the parser's view, not a
 * regex's, so an import in a comment or a JSDoc example does not count.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

/** The public entry points: what deno.json exports, and all a recipe may import. */
const ENTRY_POINTS = ["mod.ts", "recipe.ts", "workload.ts"];

/** What the published package holds (deno.json "publish"): the library itself. */
const LIBRARY = [...ENTRY_POINTS, "runtime/", "bpf/", "system/"];

/**
 * Imports that break a rule and are being removed; each must still occur, so the list
 * shrinks with the code. Empty: none is left.
 */
const KNOWN_EXCEPTIONS: ReadonlyArray<readonly [from: string, to: string]> = [];

/** Paths of the repository's .ts files, relative to its root ("runtime/dsl.ts"). */
function sourceFiles(dir = ROOT, prefix = ""): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.name.startsWith(".")) continue; // .git, .ci
    const path = prefix + entry.name;
    if (entry.isDirectory) files.push(...sourceFiles(new URL(`${entry.name}/`, dir), `${path}/`));
    else if (entry.isFile && path.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

interface InfoModule {
  specifier: string;
  dependencies?: Array<{
    specifier: string;
    code?: { specifier?: string };
    type?: { specifier?: string };
  }>;
}

/** Every local module's imports, as relative paths, or the specifier when not a local file. */
async function importGraph(): Promise<Map<string, string[]>> {
  const files = sourceFiles();
  // One root importing every file: one `deno info` gives the whole graph.
  const root = await Deno.makeTempFile({ prefix: "tsprobe-layers-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      root,
      files.map((f) => `import ${JSON.stringify(new URL(f, ROOT).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("deno.json", ROOT).pathname, root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    ok(out.success, `deno info failed: ${text(out.stderr)}`);
    const info = JSON.parse(text(out.stdout)) as { modules: InfoModule[] };
    const local = (specifier: string) =>
      specifier.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : specifier;
    const graph = new Map<string, string[]>();
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (!files.includes(from)) continue;
      graph.set(
        from,
        (m.dependencies ?? []).map((d) =>
          local(d.code?.specifier ?? d.type?.specifier ?? d.specifier)
        ),
      );
    }
    equal([...graph.keys()].sort(), files, "deno info saw every file");
    return graph;
  } finally {
    await Deno.remove(root);
  }
}

const graph = await importGraph();

/** The imports that break `allowed`, for the modules `which` selects, as "from -> to". */
function violations(
  which: (path: string) => boolean,
  allowed: (to: string, from: string) => boolean,
): string[] {
  const found: string[] = [];
  for (const [from, imports] of graph) {
    if (!which(from)) continue;
    for (const to of imports) {
      if (allowed(to, from)) continue;
      if (KNOWN_EXCEPTIONS.some(([f, t]) => f === from && t === to)) continue;
      found.push(`${from} -> ${to}`);
    }
  }
  return found;
}

const under = (...dirs: string[]) => (path: string) => dirs.some((d) => path.startsWith(d));
const inLibrary = (path: string) =>
  LIBRARY.some((l) => l.endsWith("/") ? path.startsWith(l) : path === l);
/** Deno's and Node's own modules, and the one npm package (the lambda parser). */
const external = (to: string) => to.startsWith("node:") || to.startsWith("npm:");

Deno.test("bpf/ and system/ import only each other: no runtime/, cli/ or scripts/", () => {
  equal(
    violations(under("bpf/", "system/"), (to) => under("bpf/", "system/")(to) || external(to)),
    [],
  );
});

Deno.test("runtime/compiler/ imports no concrete provider, only providers/provider.ts", () => {
  equal(
    violations(
      under("runtime/compiler/"),
      (to) => !to.startsWith("runtime/providers/") || to === "runtime/providers/provider.ts",
    ),
    [],
  );
});

Deno.test("recipes (scripts/) import only the public entry points", () => {
  equal(
    violations(under("scripts/"), (to) => ENTRY_POINTS.includes(to) || to.startsWith("node:")),
    [],
  );
});

Deno.test("bench/ does not import tests/", () => {
  equal(violations(under("bench/"), (to) => !to.startsWith("tests/")), []);
});

Deno.test("the published library imports nothing outside it (cli/, tests/, testing/...)", () => {
  equal(violations(inLibrary, (to) => inLibrary(to) || external(to)), []);
});

Deno.test("every known exception to the layers still occurs (else remove it from the list)", () => {
  for (const [from, to] of KNOWN_EXCEPTIONS) {
    ok(graph.get(from)?.includes(to), `${from} no longer imports ${to}`);
  }
});

Deno.test("runtime/version.ts says deno.json's version", async () => {
  const { VERSION } = await import("../runtime/version.ts");
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  equal(VERSION, config.version);
});
