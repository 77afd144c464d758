/**
 * Writes runtime/providers/baseline_types.ts: the argument types of the tracepoints and syscalls
 * this repository names (its code, tests, recipes and README) on the running kernel, under a
 * header naming that kernel's release and architecture. Only those: the types of every probe of
 * one kernel (300 KB) would type-check scripts against a kernel they may not run on; `probe
 * types` writes the user's own (runtime/kernel_types.ts is the generator both use).
 *
 *   deno run -A tools/gen_types.ts
 *
 * @module
 */
import { baselineModule, kernelTypes } from "../runtime/kernel_types.ts";
import { AIO_SYSCALLS } from "../runtime/providers/aio/aio.ts";
import { listTracepointsSync } from "../system/tracefs.ts";

const ROOT = new URL("../", import.meta.url);
const SOURCES = [
  "README.md",
  "mod.ts",
  "recipe.ts",
  "workload.ts",
  "cli.ts",
  "cli",
  "runtime",
  "scripts",
  "testing",
  "tests",
  "bench",
];
const OUTPUT = "runtime/providers/baseline_types.ts";

/** Every file under `path` (relative to the repository) that may name a probe. */
function* sourceFiles(path: string): Generator<string> {
  const url = new URL(path, ROOT);
  if (Deno.statSync(url).isFile) {
    if (path !== OUTPUT && /\.(ts|md)$/.test(path)) yield Deno.readTextFileSync(url);
    return;
  }
  for (const entry of Deno.readDirSync(url)) yield* sourceFiles(`${path}/${entry.name}`);
}

/**
 * The probe names quoted in `texts` that this kernel has: "block:block_rq_issue" a tracepoint,
 * "openat:entry" or "openat:return" a syscall. Quoted names only, so that a name built at run
 * time (`${name}:entry`) is typed loosely rather than guessed.
 */
export function quotedProbes(
  texts: Iterable<string>,
  tracepoints: Set<string>,
  syscalls: Set<string>,
): { tracepoints: Set<string>; syscalls: Set<string> } {
  const used = { tracepoints: new Set<string>(), syscalls: new Set<string>() };
  for (const text of texts) {
    for (const [, a, b] of text.matchAll(/["'`](\w+):([\w-]+)["'`]/g)) {
      if (tracepoints.has(`${a}:${b}`)) used.tracepoints.add(`${a}:${b}`);
      if ((b === "entry" || b === "return") && syscalls.has(a)) used.syscalls.add(a);
    }
  }
  return used;
}

if (import.meta.main) {
  const all = listTracepointsSync();
  const tracepoints = new Set(all.map((t) => `${t.category}:${t.name}`));
  const syscalls = new Set(
    all.filter((t) => t.category === "syscalls" && t.name.startsWith("sys_enter_"))
      .map((t) => t.name.slice("sys_enter_".length)),
  );
  const used = quotedProbes(SOURCES.flatMap((s) => [...sourceFiles(s)]), tracepoints, syscalls);
  // The aio provider types these by their names alone (AioArgs in the DSL).
  for (const s of AIO_SYSCALLS) used.syscalls.add(s);
  const types = kernelTypes({
    tracepoint: (name) => used.tracepoints.has(name),
    syscall: (name) => used.syscalls.has(name),
  });
  const output = new URL(OUTPUT, ROOT);
  Deno.writeTextFileSync(output, baselineModule(types, "tools/gen_types.ts"));
  // As committed: deno fmt --check passes on a fresh regeneration.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", output.pathname] }).output();
  console.log(`${OUTPUT}: ${types.syscalls.size} syscalls, ${types.tracepoints.size} tracepoints`);
}
