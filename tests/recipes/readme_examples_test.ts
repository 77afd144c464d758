/**
 * The README's TypeScript examples compile for the running kernel: each one that calls run()
 * goes through `probe run --explain`, which plans and generates every program (lambdas, fields,
 * handlers' reads) and loads nothing.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { probe } from "../fixtures/subprocess.ts";

const ROOT = new URL("../..", import.meta.url);
const README = Deno.readTextFileSync(new URL("README.md", ROOT));

/** The README's ```ts blocks that run probes, importing the library by absolute URL. */
const EXAMPLES = [...README.matchAll(/```ts\n([\s\S]*?)```/g)]
  .map((m) => m[1])
  .filter((code) => /\bawait run\(/.test(code) && code.includes('from "./mod.ts"'))
  .map((code) =>
    code.replaceAll('"./mod.ts"', JSON.stringify(new URL("mod.ts", ROOT).href))
      // A pid that exists: this test's.
      .replaceAll("pid: 1234", `pid: ${Deno.pid}`)
  );

Deno.test("every README example that runs probes compiles for this kernel", async () => {
  ok(EXAMPLES.length >= 3, `${EXAMPLES.length} examples`);
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-readme-" });
  try {
    for (const [i, code] of EXAMPLES.entries()) {
      const file = `${dir}/example${i}.ts`;
      await Deno.writeTextFile(file, code);
      const r = await probe(["run", "--explain", file]);
      equal(r.code, 0, `README example ${i + 1}:\n${code}\n${r.stderr}`);
      ok(r.stdout.includes("probe "), r.stdout);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
