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
  const total = rows.reduce((n, r) => n + (r.value as { value: number }).value, 0);
  // Ten sleeps of 200 ms; anything else perl waits for (its start) adds a little.
  ok(Math.abs(total - 2e9) <= 0.05 * 2e9, `off-CPU ${total / 1e6} ms`);
  ok(offs >= 10, `${offs} switch-outs that blocked`);
  // Most of it in the stack of the select() that slept.
  const top =
    rows.sort((a, b) =>
      (b.value as { value: number }).value - (a.value as { value: number }).value
    )[0];
  ok((top.value as { value: number }).value >= 1.9e9, "the sleeps share one stack");
  ok(/select|poll|nanosleep|schedule_hrtimeout/.test(String(top.key[0])), String(top.key[0]));
});
