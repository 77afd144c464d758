/**
 * execsnoop: every program started, with its whole command line, like BCC's tool of that name:
 * proc:exec (sched:sched_process_exec) in the new program's context, the arguments read in
 * the kernel from its argument area, so even a process that exits at once is seen complete.
 *
 *   tools/run scripts/execsnoop.ts --demo               a built-in workload starting programs
 *   tools/run scripts/execsnoop.ts -a -d 30s
 *   tools/run scripts/execsnoop.ts -a --json
 *
 * JSON (--format json|ndjson): an `event` record named `exec` per program started, its data
 * pid, ppid, comm, filename and argv (an array).
 */
import { printable, proc } from "../mod.ts";
import { recipe } from "../recipe.ts";

await recipe({
  name: "execsnoop",
  description: "Programs started (execve that succeeded), with pid, parent and command line.",
  examples: [
    "execsnoop --demo          a built-in workload that starts a few programs",
    "execsnoop -a -d 30s       every process for 30 seconds",
  ],
  demo: 'for i in 1 2 3; do /bin/echo hello "world $i" > /dev/null; done; ls /etc > /dev/null',
  setup(o) {
    if (!o.json) {
      console.log(`${"PID".padStart(7)} ${"PPID".padStart(7)} ${"COMM".padEnd(16)} ARGS`);
    }
    proc.on("exec", (e) => {
      if (o.records) {
        const { pid, ppid, comm, filename, argv } = e;
        o.records.event("exec", { pid, ppid, comm, filename, argv });
        return;
      }
      // An argument with spaces is quoted, so the line reads back as the command it was.
      const args = e.argv.map((a) => /[\s"'\\]/.test(a) || a === "" ? JSON.stringify(a) : a);
      console.log(
        `${String(e.pid).padStart(7)} ${String(e.ppid).padStart(7)} ` +
          `${printable(e.comm).padEnd(16)} ${printable(args.join(" "))}`,
      );
    });
  },
});
