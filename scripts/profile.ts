/**
 * profile: where the CPUs spend their time, by stack, like BCC's profile and bpftrace's
 * `profile:hz:99 { @[kstack, ustack] = count(); }`. Every online CPU is sampled F times a
 * second; samples are counted in the kernel by process name and stack ids, and only the
 * counts reach JavaScript, where the stacks get their names (kernel frames from kallsyms, user
 * frames from each process's mappings and ELF symbols).
 *
 *   tools/run scripts/profile.ts --demo                  a built-in spinning workload
 *   tools/run scripts/profile.ts -a -d 10s --folded > out.folded
 *   tools/run scripts/profile.ts -p 1234 -d 30s --svg cpu.svg
 *
 * Output: the hottest stacks as bpftrace prints them (--top N), or with --folded one line per
 * stack, `comm;root;...;leaf COUNT` (flamegraph.pl's input); --svg FILE also writes a flame
 * graph that opens in a browser (click to zoom, Search to highlight). The number of samples
 * goes to stderr. User stacks need frame pointers in the profiled code (most distributions'
 * libraries lack them below the first frame).
 *
 * JSON (--format json|ndjson): the counts as an `aggregation` record named `stacks`, every
 * stack (not only --top), keyed by comm, ustack and kstack (those --stacks chose; each an array
 * of frames, leaf first), the same as probe writes for
 * `profile({ hz: 99 }).count((e) => [e.comm, e.ustack, e.kstack])`.
 */
import {
  flameGraphSvg,
  foldedText,
  foldStacks,
  formatStacks,
  profile,
  type ProfileEvent,
} from "../mod.ts";
import { recipe, UsageError } from "../recipe.ts";

const TITLE = "stacks";

await recipe({
  name: "profile",
  description: "CPU profile: stacks sampled on every CPU, counted in the kernel by stack.",
  examples: [
    "profile --demo                      profile a built-in spinning shell loop",
    "profile -a -d 10s --folded          every process for 10 s, folded stacks",
    "profile -p 1234 -F 199 --svg cpu.svg   one process, a flame graph",
  ],
  options: {
    frequency: {
      type: "number",
      short: "F",
      default: 99,
      min: 1,
      integer: true,
      help: "samples per second on each CPU",
    },
    stacks: {
      type: "string",
      default: "both",
      choices: ["both", "kernel", "user"],
      help: "which stacks: both, kernel or user",
    },
    top: { type: "number", default: 10, min: 1, integer: true, help: "stacks shown (text)" },
    folded: { type: "boolean", help: "print folded stacks (one line each)" },
    svg: { type: "string", help: "also write a flame graph to FILE" },
  },
  demo: "end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do :; done",
  setup(o) {
    if (o.folded && o.json) throw new UsageError("--folded is text: give it without --format json");
    const samples = profile({ hz: o.frequency });
    // Kernel lambdas see only the event: one lambda per choice.
    const by = o.stacks === "kernel"
      ? (e: ProfileEvent) => [e.comm, e.kstack]
      : o.stacks === "user"
      ? (e: ProfileEvent) => [e.comm, e.ustack]
      : (e: ProfileEvent) => [e.comm, e.ustack, e.kstack];
    const counts = samples.count(by, { title: TITLE, size: 65536 });
    return () => {
      const data = counts.read()!;
      const stacks = foldStacks(data).sort((a, b) => b.count - a.count);
      const total = stacks.reduce((n, s) => n + s.count, 0);
      if (data.lost > 0) {
        console.error(
          `profile: ${data.lost} samples not counted: more than ${data.capacity} stacks`,
        );
      }
      if (o.svg) {
        Deno.writeTextFileSync(o.svg, flameGraphSvg(stacks, `CPU profile, ${o.frequency} Hz`));
      }
      if (o.records) o.records.aggregation(data);
      else if (o.folded) console.log(foldedText(stacks));
      else console.log(formatStacks(stacks, o.top));
      console.error(`profile: ${total} samples, ${stacks.length} distinct stacks`);
    };
  },
  run: () => ({ printAggregations: false }),
});
