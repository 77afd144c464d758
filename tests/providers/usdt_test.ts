/**
 * USDT probes of a program built here with `sys/sdt.h` (register, memory and constant
 * operands; a semaphore-guarded probe), and of Debian's python3 (function__entry).
 */
import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { run, usdt } from "../../mod.ts";
import { usdtProbes } from "../../system/elf.ts";
import { listProbes } from "../../runtime/listing.ts";

const N = 100;
const PROGRAM = `
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
unsigned short tsp_args_semaphore __attribute__((section(".probes")));
unsigned short tsp_guarded_semaphore __attribute__((section(".probes")));
int main(int argc, char **argv) {
  long n = atol(argv[1]), enabled = 0;
  for (long i = 0; i < n; i++) {
    STAP_PROBE3(tsp, args, i, (int)-i, 42);
    if (tsp_guarded_semaphore) { enabled++; STAP_PROBE1(tsp, guarded, i); }
  }
  printf("%ld\\n", enabled);
  return 0;
}
`;

/** Builds the program at -O0 (memory operands) and -O2 (registers); runs `fn` on each. */
async function withPrograms(fn: (exe: string, out: string, opt: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-usdt-" });
  try {
    await Deno.writeTextFile(`${dir}/sdt.c`, PROGRAM);
    for (const opt of ["-O0", "-O2"]) {
      const exe = `${dir}/sdt${opt}`;
      const gcc = await new Deno.Command("gcc", {
        args: [opt, "-o", exe, `${dir}/sdt.c`],
        stderr: "piped",
      }).output();
      ok(gcc.success, new TextDecoder().decode(gcc.stderr));
      await fn(exe, `${dir}/out${opt}`, opt);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("usdt: every argument is what the program passed, from memory (-O0) and register (-O2) operands", async () => {
  await withPrograms(async (exe, _out, opt) => {
    const [note] = usdtProbes(exe).filter((n) => n.name === "args");
    const kinds = note.args.split(" ").map((s) =>
      s.includes("(%") ? "memory" : s.includes("$") ? "constant" : "register"
    );
    // What the compiler chose: both operand kinds are covered by the two builds.
    if (opt === "-O0") ok(kinds.includes("memory"), note.args);
    else ok(kinds.includes("register"), note.args);
    const seen: Array<[bigint, number, number]> = [];
    usdt.on(
      `${exe}:tsp:args`,
      (e) => seen.push([e.arg0 as bigint, e.arg1 as number, e.arg2 as number]),
    );
    await run({ command: [exe, String(N)] });
    equal(
      seen.sort((a, b) => Number(a[0] - b[0])),
      Array.from({ length: N }, (_, i) => [BigInt(i), -i || 0, 42]),
      `${opt}: ${note.args}`,
    );
  });
});

Deno.test("usdt: a semaphore-guarded probe fires only while attached", async () => {
  await withPrograms(async (exe, out) => {
    // Untraced: the semaphore is 0, the guarded code never runs.
    const plain = await new Deno.Command(exe, { args: [String(N)], stdout: "piped" }).output();
    equal(new TextDecoder().decode(plain.stdout).trim(), "0");
    let fired = 0;
    usdt.on(`${exe}:tsp:guarded`, () => fired++);
    await run({ command: ["sh", "-c", `${exe} ${N} > ${out}`] });
    equal(
      Deno.readTextFileSync(out).trim(),
      String(N),
      "the kernel set the semaphore while attached",
    );
    equal(fired, N);
  });
});

Deno.test("usdt: python's function__return names the functions a known script calls, with exact counts", async () => {
  const python = Deno.realPathSync("/usr/bin/python3");
  // Debian 12's Python 3.11 fires function__entry only for a few frames (bpftrace sees the
  // same: none for these functions), function__return for every return: one per plain call.
  const script = "def alpha(x): return x\ndef beta(x): return alpha(x)\n" +
    "for i in range(10): alpha(i)\nfor i in range(7): beta(i)\n";
  const calls: Record<string, number> = {};
  usdt.on(`${python}:python:function__return`, (e) => {
    if (e.str0 === "<string>") calls[e.str1] = (calls[e.str1] ?? 0) + 1;
  }, { strings: [0, 1] });
  const summary = await run({ command: [python, "-c", script] });
  equal(summary.commandExitCode, 0);
  // alpha: 10 direct calls and 7 through beta.
  equal([calls.alpha, calls.beta], [17, 7], JSON.stringify(calls));
});

Deno.test("usdt specs: malformed, a missing probe with close names, listing: one line each", () => {
  throws(() => usdt.on("/usr/bin/python3:function__entry"), /is not TARGET:PROVIDER:NAME/);
  throws(
    () => usdt.on("/usr/bin/python3:python:function_entry"),
    /has no USDT probe .*did you mean python:function__entry/,
  );
  const listed = listProbes("usdt:/usr/bin/python3:python:function*").map((p) => p.name);
  equal(listed, [
    "usdt:/usr/bin/python3:python:function__entry",
    "usdt:/usr/bin/python3:python:function__return",
  ]);
});
