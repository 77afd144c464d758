/**
 * offcputime: where tasks wait when they are off the CPU, by stack, like BCC's tool of that
 * name. Each switch-out keeps the task's stacks; its switch-in adds the time it was off to the
 * total of those stacks, in the kernel (sched:on-cpu). Only the totals reach JavaScript.
 *
 *   tools/run scripts/offcputime.ts --demo               a built-in sleeping workload
 *   tools/run scripts/offcputime.ts -p 1234 -d 10s --folded > off.folded
 *   tools/run scripts/offcputime.ts -a -d 5s --min-us 1000 --svg off.svg
 *
 * Totals are in microseconds. --folded prints one line per stack (flame graph tools' input),
 * --svg FILE writes an off-CPU flame graph. Preemptions count too (time spent runnable).
 *
 * JSON (--format json|ndjson): the totals as an `aggregation` record named `offcpu_us`, every
 * stack (not only --top), keyed by comm, ustack and kstack (those --stacks chose; each an array
 * of frames, leaf first), its values microseconds.
 */
import {
  flameGraphSvg,
  foldedText,
  foldStacks,
  formatStacks,
  type OnCpuEvent,
  sched,
} from "../mod.ts";
import { recipe, UsageError } from "../recipe.ts";

const TITLE = "offcpu_us";

await recipe({
  name: "offcputime",
  description: "Off-CPU time by stack: where tasks block, summed in the kernel (sched:on-cpu).",
  examples: [
    "offcputime --demo                   a built-in workload that sleeps and reads",
    "offcputime -p 1234 -d 10s --folded  one process for 10 s, folded stacks",
  ],
  options: {
    stacks: {
      type: "string",
      default: "both",
      choices: ["both", "kernel", "user"],
      help: "which stacks: both, kernel or user",
    },
    "min-us": { type: "number", default: 1, min: 0, integer: true, help: "omit waits shorter" },
    top: { type: "number", default: 10, min: 1, integer: true, help: "stacks shown (text)" },
    folded: { type: "boolean", help: "print folded stacks (one line each)" },
    svg: { type: "string", help: "also write a flame graph to FILE" },
  },
  demo: "for i in 1 2 3 4 5; do sleep 0.1; done",
  setup(o) {
    if (o.folded && o.json) throw new UsageError("--folded is text: give it without --format json");
    // Kernel lambdas see only the event and params: one lambda per choice.
    const by = o.stacks === "kernel"
      ? (e: OnCpuEvent) => [e.comm, e.kstack]
      : o.stacks === "user"
      ? (e: OnCpuEvent) => [e.comm, e.ustack]
      : (e: OnCpuEvent) => [e.comm, e.ustack, e.kstack];
    const totals = sched.on("on-cpu")
      .where((e, p) => e.offcpuNs !== undefined && e.offcpuNs >= p.minNs, {
        minNs: o["min-us"] * 1000,
      })
      .sum((e) => e.offcpuNs! / 1000, { by, title: TITLE, size: 65536 });
    return () => {
      const data = totals.read()!;
      const stacks = foldStacks(data);
      const total = stacks.reduce((n, s) => n + s.count, 0);
      if (data.lost > 0) {
        console.error(
          `offcputime: ${data.lost} waits not summed: more than ${data.capacity} stacks`,
        );
      }
      if (o.svg) Deno.writeTextFileSync(o.svg, flameGraphSvg(stacks, "Off-CPU time (us)"));
      if (o.records) o.records.aggregation(data);
      else if (o.folded) console.log(foldedText(stacks));
      else console.log(formatStacks(stacks, o.top));
      console.error(`offcputime: ${total} us off CPU in ${stacks.length} stacks`);
    };
  },
  run: () => ({ printAggregations: false }),
});
