/**
 * offcputime, stackcount and funclatency against workloads whose waits, stacks and calls are
 * known.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { aggregationsOf, tableOf } from "../fixtures/records.ts";
import { lines, recipe } from "../fixtures/subprocess.ts";

/** The one aggregation of a recipe's --format `format` output. */
function theAggregation(text: string, format: "json" | "ndjson") {
  const all = aggregationsOf(text, format);
  equal(all.length, 1, text);
  return all[0];
}

Deno.test("offcputime: a process that sleeps 200 ms ten times was off CPU 2 s, in its sleep's stack", async () => {
  const r = await recipe(
    "offcputime",
    "--json",
    "--stacks",
    "kernel",
    "-c",
    "perl -e 'select(undef, undef, undef, 0.2) for 1..10'",
  );
  equal(r.code, 0, r.stderr);
  const off = theAggregation(r.stdout, "json");
  equal([off.name, off.kind, off.keys], ["offcpu_us", "sum", ["comm", "kstack"]]);
  // The sleeps share one stack: 2 s within 5% (perl's start waits on other things too).
  const perl = off.rows.flatMap((s) =>
    s.key.comm === "perl" && "value" in s ? [{ us: s.value as number, kstack: s.key.kstack }] : []
  ).sort((a, b) => b.us - a.us);
  ok(Math.abs(perl[0].us - 2e6) <= 0.05 * 2e6, `perl's top stack off CPU ${perl[0].us} us`);
  ok((perl[0].kstack as string[]).some((f) => /schedule/.test(f)), r.stdout);
});

const FORKS = ["--probe", "tracepoint:sched:sched_process_fork", "-c"];
const FORK5 = "perl -e 'for (1..5) { fork() || exit 0; wait }'";

Deno.test("stackcount: every fork of a process is counted, in the stack of the kernel's clone", async () => {
  const r = await recipe("stackcount", "--folded", ...FORKS, FORK5);
  equal(r.code, 0, r.stderr);
  const perl = lines(r.stdout).filter((l) => l.startsWith("perl;"));
  const count = perl.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  equal(count, 5, r.stdout);
  ok(perl.every((l) => /;kernel_clone(\+\d+)?[; ]/.test(l)), r.stdout);
});

Deno.test("stackcount --format ndjson: the counts as an aggregation named after the probe, stacks leaf first", async () => {
  const r = await recipe("stackcount", "--format", "ndjson", ...FORKS, FORK5);
  equal(r.code, 0, r.stderr);
  const counts = theAggregation(r.stdout, "ndjson");
  equal([counts.name, counts.kind, counts.keys], [FORKS[1], "count", ["comm", "kstack"]]);
  const perl = counts.rows.filter((s) => s.key.comm === "perl");
  equal(perl.reduce((n, s) => n + ("value" in s ? s.value as number : 0), 0), 5, r.stdout);
  // Leaf first: kernel_clone (or the tracepoint's frames above it) first, the syscall's entry last.
  const stacks = perl.map((s) => s.key.kstack as string[]);
  ok(stacks.every((k) => k.some((f) => /^kernel_clone/.test(f))), r.stdout);
  ok(stacks.every((k) => /^entry_SYSCALL_64/.test(k.at(-1)!)), r.stdout);
  const both = await recipe("stackcount", "--folded", "--json", ...FORKS, "true");
  equal([both.code, lines(both.stderr).length], [2, 1], both.stderr);
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
    const f = `${dir}/work:tsp_work`;
    const r = await recipe("funclatency", "--json", "-f", f, "-c", `${dir}/work ${n}`);
    equal(r.code, 0, r.stderr);
    const hist = theAggregation(r.stdout, "json");
    equal([hist.name, hist.kind, hist.rows.length], [`${f} (us)`, "hist", 1]);
    const [row] = hist.rows;
    ok("buckets" in row, JSON.stringify(row));
    equal(row.count, n);
    // usleep(500) sleeps at least 500 us: nothing in a bucket below 256.
    ok(row.buckets.every((b) => b.low !== null && b.low >= 256), JSON.stringify(row.buckets));
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
    const { rows } = tableOf<{ file: string; function: string; calls: number }>(
      r.stdout,
      "json",
      "functions",
    );
    const mine = Object.fromEntries(
      rows.filter((x) => x.file === script).map((x) => [x.function, x.calls]),
    );
    equal([mine.alpha, mine.beta], [17, 7], JSON.stringify(mine));
  } finally {
    await Deno.remove(script);
  }
});
