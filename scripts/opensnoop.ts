/**
 * opensnoop: every file opened, by whom, and whether it worked, like the BCC tool of that name,
 * with the time each open took measured in the kernel.
 *
 *   tools/run scripts/opensnoop.ts --demo          trace a built-in workload and exit
 *   tools/run scripts/opensnoop.ts -p 1234 -d 10s  trace one process for 10 seconds
 *   tools/run scripts/opensnoop.ts -- ls /etc      trace a command and its children
 */
import { parseArgs } from "node:util";
import { run, syscall } from "../mod.ts";

const USAGE = `usage: opensnoop.ts [--demo] [-p PID] [-c COMM] [-d DURATION] [-x] [-- COMMAND...]
  --demo            trace a built-in workload (a shell that opens files) and exit
  -p, --pid PID     trace only this process
  -c, --comm COMM   trace only tasks with this command name
  -d, --duration D  stop after D (500ms, 10s, 2m); default: Ctrl-C or end of COMMAND
  -x, --failed      show only failed opens
  -h, --help        this text`;

const { values: opts, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    demo: { type: "boolean" },
    pid: { type: "string", short: "p" },
    comm: { type: "string", short: "c" },
    duration: { type: "string", short: "d" },
    failed: { type: "boolean", short: "x" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const DEMO = "for f in /etc/hostname /etc/os-release /nonexistent /etc/passwd; do " +
  "cat $f >/dev/null 2>&1; done; ls /usr/share >/dev/null";
const command = opts.demo ? ["sh", "-c", DEMO] : positionals.length ? positionals : undefined;
const pid = opts.pid !== undefined ? Number(opts.pid) : undefined;
if (pid !== undefined && !Number.isInteger(pid)) {
  console.error(`opensnoop: --pid '${opts.pid}' is not a process id`);
  Deno.exit(2);
}

console.log(
  `${"PID".padStart(7)} ${"COMM".padEnd(16)} ${"FD".padStart(4)} ${"ERR".padStart(4)} ${
    "US".padStart(8)
  } PATH`,
);
syscall.on("openat:return", (e) => {
  if (opts.failed && e.ret >= 0) return;
  const fd = e.ret >= 0 ? String(e.ret) : "-1";
  const err = e.ret < 0 ? String(-e.ret) : "0";
  const us = e.latencyNs === undefined ? "?" : (e.latencyNs / 1000).toFixed(1);
  console.log(
    `${String(e.pid).padStart(7)} ${e.comm.padEnd(16)} ${fd.padStart(4)} ${err.padStart(4)} ` +
      `${us.padStart(8)} ${e.args.filename}`,
  );
});

const summary = await run({ command, pid, comm: opts.comm, duration: opts.duration });
console.error(
  `opensnoop: ${summary.events} opens traced in ${(summary.elapsedMs / 1000).toFixed(1)} s` +
    (summary.dropped ? `, ${summary.dropped} lost (ring buffer full)` : ""),
);
