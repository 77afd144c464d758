/**
 * funclatency: how long a function takes, as a log2 histogram in microseconds, like BCC's
 * tool of that name. FUNCTION is `TARGET:FUNC` for a function of a program or library
 * (uprobe and uretprobe: "/usr/bin/bash:readline", "libc:malloc") or a bare kernel function
 * name (kprobe and kretprobe, where the kernel has kprobes). Each call is timed in the kernel
 * from entry to return of the same thread; only the histogram reaches JavaScript.
 *
 *   tools/run scripts/funclatency.ts --demo                    libc's getppid on a built-in workload
 *   tools/run scripts/funclatency.ts -f libc:malloc -p 1234 -d 10s
 *   tools/run scripts/funclatency.ts -f vfs_read -a -d 5s --per-process
 *
 * JSON (--format json|ndjson): the histogram as an `aggregation` record named `FUNCTION (us)`,
 * keyed by comm with --per-process.
 */
import { kprobe, kretprobe, span, uprobe, uretprobe } from "../mod.ts";
import { recipe } from "../recipe.ts";

await recipe({
  name: "funclatency",
  description: "Time a function from entry to return, as a log2 histogram (us).",
  examples: [
    "funclatency --demo                   libc getppid on a built-in workload",
    "funclatency -f libc:malloc -p 1234   one process's mallocs",
    "funclatency -f vfs_read -a -d 5s     a kernel function (needs kprobes)",
  ],
  options: {
    function: {
      type: "string",
      short: "f",
      default: "libc:getppid",
      help: "TARGET:FUNC (a program's or library's) or a kernel function",
    },
    "per-process": { type: "boolean", help: "one histogram per process (comm)" },
  },
  demo: "perl -e 'getppid() for 1..2000'",
  setup(o) {
    const f = o.function;
    const user = f.includes(":");
    const timed = span(
      user ? uprobe.on(f) : kprobe.on(f),
      user ? uretprobe.on(f) : kretprobe.on(f),
      {
        key: (e) => e.tid,
        name: f,
      },
    );
    const us = (e: { latencyNs: number }) => e.latencyNs / 1000;
    const hist = o["per-process"]
      ? timed.hist(us, { by: (e) => e.comm, title: `${f} (us)` })
      : timed.hist(us, { title: `${f} (us)` });
    return () => {
      if (o.records) o.records.aggregation(hist.read()!);
      else hist.print();
    };
  },
});
