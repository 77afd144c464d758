/**
 * offcputime, stackcount and funclatency against workloads whose waits, stacks and calls are
 * known.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, recipe } from "../fixtures/subprocess.ts";

type Stack = { frames: string[]; count: number };

Deno.test("offcputime: a process that sleeps 200 ms ten times was off CPU 2 s, in its sleep's stack", async () => {
  const r = await recipe(
    "offcputime",
    "--json",
    "--stacks",
    "kernel",
    "--top",
    "1000",
    "-c",
    "perl -e 'select(undef, undef, undef, 0.2) for 1..10'",
  );
  equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { unit: string; stacks: Stack[] };
  equal(out.unit, "us");
  // The sleeps share one stack: 2 s within 5% (perl's start waits on other things too).
  const perl = out.stacks.filter((s) => s.frames[0] === "perl").sort((a, b) => b.count - a.count);
  ok(Math.abs(perl[0].count - 2e6) <= 0.05 * 2e6, `perl's top stack off CPU ${perl[0].count} us`);
  ok(perl[0].frames.some((f) => /schedule/.test(f)), r.stdout);
});

Deno.test("stackcount: every fork of a process is counted, in the stack of the kernel's clone", async () => {
  const r = await recipe(
    "stackcount",
    "--probe",
    "tracepoint:sched:sched_process_fork",
    "--folded",
    "-c",
    "perl -e 'for (1..5) { fork() || exit 0; wait }'",
  );
  equal(r.code, 0, r.stderr);
  const perl = lines(r.stdout).filter((l) => l.startsWith("perl;"));
  const count = perl.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  equal(count, 5, r.stdout);
  ok(perl.every((l) => /;kernel_clone(\+\d+)?[; ]/.test(l)), r.stdout);
});

const SLEEPER = `
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) void tsp_work(int i) { usleep(500); }
int main(int argc, char **argv) { for (int i = 0; i < atoi(argv[1]); i++) tsp_work(i); return 0; }
`;

Deno.test("funclatency: each of N calls of a function that sleeps 500 us timed, none faster", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-funclat-" });
  try {
    await Deno.writeTextFile(`${dir}/work.c`, SLEEPER);
    const gcc = await new Deno.Command("gcc", {
      args: ["-O2", "-o", `${dir}/work`, `${dir}/work.c`],
      stderr: "piped",
    }).output();
    ok(gcc.success, new TextDecoder().decode(gcc.stderr));
    const n = 200;
    const r = await recipe(
      "funclatency",
      "--json",
      "-f",
      `${dir}/work:tsp_work`,
      "-c",
      `${dir}/work ${n}`,
    );
    equal(r.code, 0, r.stderr);
    const [row] = JSON.parse(r.stdout).rows as Array<
      { count: number; buckets: Array<{ low: number; high: number | null; count: number }> }
    >;
    equal(row.count, n);
    // usleep(500) sleeps at least 500 us: nothing in a bucket below 256.
    ok(row.buckets.every((b) => b.count === 0 || b.low >= 256), JSON.stringify(row.buckets));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pyflow: a known script's functions with their exact call counts", async () => {
  const script = await Deno.makeTempFile({ suffix: ".py" });
  try {
    await Deno.writeTextFile(
      script,
      "def alpha(x): return x\ndef beta(x): return alpha(x)\n" +
        "for i in range(10): alpha(i)\nfor i in range(7): beta(i)\n",
    );
    const r = await recipe("pyflow", "--json", "--top", "1000", "-c", `/usr/bin/python3 ${script}`);
    equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout).rows as Array<
      { file: string; function: string; calls: number }
    >;
    const mine = Object.fromEntries(
      rows.filter((x) => x.file === script).map((x) => [x.function, x.calls]),
    );
    equal([mine.alpha, mine.beta], [17, 7], JSON.stringify(mine));
  } finally {
    await Deno.remove(script);
  }
});
