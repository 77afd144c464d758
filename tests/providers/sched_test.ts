/**
 * sched:off-cpu and sched:on-cpu: off-CPU time of a thread that sleeps a known time, and the
 * stack it slept in.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { run, sched } from "../../mod.ts";

Deno.test("off-CPU time of a thread that sleeps 200 ms ten times is 2 s within 5%, in the sleep's stack", async () => {
  const offcpu = sched.on("on-cpu").where((e) => e.comm === "perl")
    .sum((e) => e.offcpuNs!, { by: (e) => e.kstack });
  let offs = 0;
  sched.on("off-cpu").where((e) => e.comm === "perl" && !e.preempted).on(() => offs++);
  const summary = await run({
    command: ["perl", "-e", "select(undef, undef, undef, 0.2) for 1..10"],
    printAggregations: false,
  });
  equal(summary.commandExitCode, 0);
  const rows = offcpu.read()!.rows;
  ok(offs >= 10, `${offs} switch-outs that blocked`);
  // The ten sleeps share the select() stack: 2 s within 5% (perl's start waits on other
  // things, in other stacks).
  const top =
    rows.sort((a, b) =>
      (b.value as { value: number }).value - (a.value as { value: number }).value
    )[0];
  const slept = (top.value as { value: number }).value;
  ok(Math.abs(slept - 2e9) <= 0.05 * 2e9, `off-CPU in the sleep's stack: ${slept / 1e6} ms`);
  ok(/select|poll|nanosleep|schedule_hrtimeout/.test(String(top.key[0])), String(top.key[0]));
});
