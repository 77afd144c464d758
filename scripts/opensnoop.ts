/**
 * opensnoop: every file opened, by whom, and whether it worked, like the BCC tool of that name,
 * with the time each open took measured in the kernel.
 *
 *   deno run -A scripts/opensnoop.ts --demo          trace a built-in workload
 *   deno run -A scripts/opensnoop.ts -p 1234 -d 10s  one process for 10 seconds
 *   deno run -A scripts/opensnoop.ts -c "ls /etc" -x only the opens that failed
 *
 * JSON (--format json|ndjson): an `event` record named `open` per open, its data pid, comm,
 * ret (the fd, or -errno), us (the time it took; absent when its entry was not seen) and path.
 */
import { recipe, UsageError } from "../recipe.ts";
import { printable, syscall } from "../mod.ts";

await recipe({
  name: "opensnoop",
  description: "Files opened (openat), with the result and the time each open took",
  options: {
    failed: { type: "boolean", short: "x", help: "show only failed opens" },
    name: { type: "string", short: "n", help: "only tasks with this command name" },
  },
  demo: "for f in /etc/hostname /etc/os-release /nonexistent /etc/passwd; do " +
    "cat $f >/dev/null 2>&1; done; ls /usr/share >/dev/null",
  setup(o) {
    if (o.name !== undefined) {
      // A comm is 1 to 15 bytes (TASK_COMM_LEN 16, with its NUL): another name matches nothing.
      const bytes = new TextEncoder().encode(o.name).length;
      if (bytes < 1 || bytes > 15) {
        throw new UsageError(
          `--name '${printable(o.name)}' is ${bytes} bytes: a command name has 1 to 15`,
        );
      }
    }
    let opens = 0;
    let stream = syscall.on("openat:return");
    if (o.failed) stream = stream.where((e) => e.ret < 0);
    if (o.name !== undefined) stream = stream.where((e, p) => e.comm === p.name, { name: o.name });
    if (!o.json) {
      console.log(
        `${"PID".padStart(7)} ${"COMM".padEnd(16)} ${"FD".padStart(4)} ${"ERR".padStart(4)} ${
          "US".padStart(8)
        } PATH`,
      );
    }
    stream.on((e) => {
      opens++;
      const us = e.latencyNs === undefined ? undefined : e.latencyNs / 1000;
      if (o.records) {
        const { pid, comm, ret } = e;
        o.records.event("open", { pid, comm, ret, us, path: e.args.filename });
        return;
      }
      const fd = e.ret >= 0 ? String(e.ret) : "-1";
      const err = e.ret < 0 ? String(-e.ret) : "0";
      console.log(
        `${String(e.pid).padStart(7)} ${printable(e.comm).padEnd(16)} ${fd.padStart(4)} ` +
          `${err.padStart(4)} ${(us?.toFixed(1) ?? "?").padStart(8)} ${printable(e.args.filename)}`,
      );
    });
    return (summary) => {
      if (o.json) return;
      console.error(
        `opensnoop: ${opens} opens traced in ${(summary.elapsedMs / 1000).toFixed(1)} s` +
          (summary.dropped ? `, ${summary.dropped} lost (ring buffer full)` : ""),
      );
    };
  },
});
