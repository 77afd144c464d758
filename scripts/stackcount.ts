/**
 * stackcount: the stacks that reach a probe, counted in the kernel, like BCC's tool of that
 * name. PROBE is any probe the CLI lists: `tracepoint:CAT:NAME`, `kprobe:FUNC`,
 * `uprobe:TARGET:FUNC`, `syscall:NAME:entry`.
 *
 *   tools/run scripts/stackcount.ts --demo                   block_rq_issue on a built-in workload
 *   tools/run scripts/stackcount.ts --probe tracepoint:sched:sched_process_fork -d 5s
 *   tools/run scripts/stackcount.ts --probe uprobe:libc:malloc -p 1234 --stacks user --folded
 *
 * JSON (--format json|ndjson): the counts as an `aggregation` record named after PROBE, every
 * stack (not only --top), keyed by comm, ustack and kstack (those --stacks chose; each an array
 * of frames, leaf first).
 */
import {
  foldedText,
  foldStacks,
  formatStacks,
  kprobe,
  type Stream,
  syscall,
  tracepoint,
  uprobe,
} from "../mod.ts";
import { recipe, UsageError } from "../recipe.ts";

/** The stream of the probe a spec names. */
// deno-lint-ignore no-explicit-any
function streamOf(spec: string): Stream<any> {
  const [kind, ...rest] = spec.split(":");
  const name = rest.join(":");
  switch (kind) {
    case "tracepoint":
      return tracepoint(name);
    case "kprobe":
      return kprobe.on(name);
    case "uprobe":
      return uprobe.on(name);
    case "syscall":
      return syscall.on(name as `${string}:entry`);
    default:
      throw new UsageError(
        `probe '${spec}' is not tracepoint:CAT:NAME, kprobe:FUNC, uprobe:TARGET:FUNC or ` +
          "syscall:NAME:entry",
      );
  }
}

await recipe({
  name: "stackcount",
  description: "Count the stacks that reach a probe, in the kernel.",
  examples: [
    "stackcount --demo                            block requests issued, by stack",
    "stackcount -p 1234 --probe uprobe:libc:malloc --stacks user",
  ],
  options: {
    probe: {
      type: "string",
      default: "tracepoint:block:block_rq_issue",
      help: "the probe whose stacks to count",
    },
    stacks: {
      type: "string",
      default: "kernel",
      choices: ["both", "kernel", "user"],
      help: "which stacks: kernel (default), user or both",
    },
    top: { type: "number", default: 10, min: 1, integer: true, help: "stacks shown (text)" },
    folded: { type: "boolean", help: "print folded stacks (one line each)" },
  },
  demo: "dd if=/dev/zero of=/var/tmp/.stackcount.$$ bs=64k count=32 oflag=direct status=none; " +
    "rm -f /var/tmp/.stackcount.$$",
  setup(o) {
    if (o.folded && o.json) throw new UsageError("--folded is text: give it without --format json");
    const s = streamOf(o.probe);
    // deno-lint-ignore no-explicit-any
    type E = any;
    const by = o.stacks === "kernel"
      ? (e: E) => [e.comm, e.kstack]
      : o.stacks === "user"
      ? (e: E) => [e.comm, e.ustack]
      : (e: E) => [e.comm, e.ustack, e.kstack];
    const counts = s.count(by, { title: o.probe, size: 65536 });
    return () => {
      const data = counts.read()!;
      const stacks = foldStacks(data);
      if (o.records) o.records.aggregation(data);
      else if (o.folded) console.log(foldedText(stacks));
      else console.log(formatStacks(stacks, o.top));
    };
  },
  run: () => ({ printAggregations: false }),
});
