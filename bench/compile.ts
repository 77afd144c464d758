/**
 * Compile and load time of a typical 3-probe script: a filtered histogram by comm, a count by
 * filename, and a span with a JavaScript handler. Measured in-process from `run()` to every
 * probe attached (target <= 150 ms, the start budget), and the compile step alone through
 * `explain()`.
 *
 *   tools/run bench/compile.ts [RUNS]
 */
import { exit, explain, run, span, syscall } from "../mod.ts";

const runs = Number(Deno.args[0] ?? 10);

function script(): void {
  syscall.on("read:return")
    .where((e) => e.ret > 0 && e.comm !== "sshd")
    .hist((e) => e.ret, { by: (e) => e.comm, title: "read sizes" });
  syscall.on("openat:entry").count((e) => e.args.filename);
  span(syscall.on("fsync:entry"), syscall.on("fsync:return"), { key: (e) => e.tid })
    .where((e) => e.latencyNs > 1_000_000)
    .on((e) => console.log(e.comm, e.latencyNs));
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const compile: number[] = [];
const attach: number[] = [];
for (let i = 0; i < runs; i++) {
  script();
  const t0 = performance.now();
  await explain();
  compile.push(performance.now() - t0);
  // explain() left the probes in place: run them.
  const t1 = performance.now();
  await run({
    printAggregations: false,
    onAttached() {
      attach.push(performance.now() - t1);
      exit();
    },
  });
}
console.log(
  `compile: ${median(compile).toFixed(1)} ms to plan and generate 3 probes; ` +
    `${median(attach).toFixed(1)} ms from run() to all attached (median of ${runs}; target 150)`,
);
