/**
 * What a run loads before its programs are attached, each in a fresh process (a module loaded
 * once stays loaded): only what its probes and consumers need.
 *
 * @module
 */
import { deepStrictEqual as equal } from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).href;

/**
 * Runs `consumer` (code on `s`, the stream of perl's getppid entries) in a fresh Deno while
 * perl calls getppid 5 times; returns what the consumer's aggregation counted and whether the
 * lambda parser was loaded.
 */
async function counted(consumer: string): Promise<{ rows: unknown; parser: boolean }> {
  const code = `
    import { run, syscall } from "${ROOT}mod.ts";
    import { parserLoaded } from "${ROOT}runtime/lambda/parse.ts";
    const s = syscall.on("getppid:entry");
    const a = ${consumer};
    await run({ command: ["perl", "-e", "getppid() for 1..5"], printAggregations: false });
    console.log(JSON.stringify({ rows: a.read()!.rows, parser: parserLoaded() }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  equal(out.code, 0, text(out.stderr));
  return JSON.parse(text(out.stdout));
}

Deno.test("a run whose consumers have no lambda does not load the lambda parser", async () => {
  equal(await counted("s.count()"), {
    rows: [{ key: [], value: { kind: "count", value: 5 } }],
    parser: false,
  });
});

Deno.test("a run with a lambda in a key loads the parser to compile it", async () => {
  equal(await counted("s.count((e) => e.comm)"), {
    rows: [{ key: ["perl"], value: { kind: "count", value: 5 } }],
    parser: true,
  });
});
