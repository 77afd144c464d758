/**
 * fileslower: each read and write that took longer than a threshold, with its file, like BCC's
 * tool of that name. The returns of read, write, pread64, pwrite64, readv, writev, preadv and
 * pwritev are timed from their entry in the kernel and only the slow ones reach JavaScript,
 * which names the file from /proc/PID/fd/FD. Any fd counts: files, pipes, sockets, terminals
 * (a read that waits for a writer is slow too). The tracer's own I/O is left out.
 *
 *   tools/run scripts/fileslower.ts --demo            a built-in workload of slow pipe I/O
 *   tools/run scripts/fileslower.ts -a --min-ms 1     every process, I/O over 1 ms
 *   tools/run scripts/fileslower.ts -p 1234 --json
 *
 * JSON (--format json|ndjson): an `event` record named `slow_io` per slow read or write, its
 * data time_s, timestamp_ns, comm, pid, tid, dir (R or W), syscall, fd, bytes, latency_ms and
 * path (null when the fd was already gone).
 */
import { printable, syscall, type SyscallReturnEvent } from "../mod.ts";
import { recipe } from "../recipe.ts";

/**
 * The demo: a reader (cat) whose writer sends a line every 300 ms, so each of its 3 reads of
 * the pipe waits; then a writer (head) that fills a pipe whose reader starts 500 ms late, so
 * one of its writes waits. The pauses are long enough that cat has started before the first
 * line, even on a slow machine.
 */
const DEMO = "for i in 1 2 3; do sleep 0.3; echo tick $i; done | cat > /dev/null; " +
  "head -c 1M /dev/zero | (sleep 0.5; cat > /dev/null)";

type IoEvent = SyscallReturnEvent<{ fd: number }>;

/** One slow I/O (the data of a `slow_io` event in JSON). */
interface SlowIo {
  time_s: number;
  timestamp_ns: number;
  comm: string;
  pid: number;
  tid: number;
  dir: "R" | "W";
  syscall: string;
  fd: number;
  bytes: number;
  latency_ms: number;
  /** The fd's target when it was looked up; null when the fd (or process) was already gone. */
  path: string | null;
}

/** Where fd `fd` of process `pid` points now (it may have been closed, or even reused). */
function fdPath(pid: number, fd: number): string | null {
  try {
    return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
}

await recipe({
  name: "fileslower",
  description: "File reads and writes slower than a threshold, timed in the kernel, with " +
    "process, size, latency and the file from /proc/PID/fd.",
  examples: [
    "fileslower --demo                  trace a built-in workload of slow pipe reads and writes",
    "fileslower -a --min-ms 1 -d 10s     every process, I/O of 1 ms or more, for 10 seconds",
    "fileslower -c 'tar cf /dev/null /usr' --json",
  ],
  options: {
    "min-ms": {
      type: "number",
      default: 10,
      min: 0,
      help: "show reads and writes that took at least this many milliseconds",
    },
  },
  demo: DEMO,
  setup(o) {
    const params = { minNs: Math.round(o["min-ms"] * 1e6), self: Deno.pid };
    // Seconds since tracing started: the kernel's clock at the first event, less the time
    // this process has seen pass since setup.
    const setupAt = performance.now();
    let base: number | undefined;
    let slow = 0;
    if (!o.json) {
      console.log(
        `${"TIME(s)".padEnd(8)} ${"COMM".padEnd(16)} ${"PID".padStart(7)} D ${
          "BYTES".padStart(8)
        } ${"LAT(ms)".padStart(9)} FILENAME`,
      );
    }
    const print = (dir: "R" | "W", name: string) => (e: IoEvent) => {
      base ??= e.timestampNs - (performance.now() - setupAt) * 1e6;
      slow++;
      const path = fdPath(e.pid, e.args.fd);
      const io: SlowIo = {
        time_s: Math.max(0, (e.timestampNs - base) / 1e9),
        timestamp_ns: e.timestampNs,
        comm: e.comm,
        pid: e.pid,
        tid: e.tid,
        dir,
        syscall: name,
        fd: e.args.fd,
        bytes: e.ret,
        latency_ms: e.latencyNs! / 1e6,
        path,
      };
      if (o.records) {
        o.records.event("slow_io", { ...io });
        return;
      }
      console.log(
        `${io.time_s.toFixed(3).padEnd(8)} ${printable(io.comm).padEnd(16)} ${
          String(io.pid).padStart(7)
        } ` +
          `${dir} ${String(io.bytes).padStart(8)} ${io.latency_ms.toFixed(2).padStart(9)} ` +
          (path === null ? `fd ${io.fd} (closed)` : printable(path)),
      );
    };
    const slowOnly = (e: IoEvent, p: typeof params) => e.latencyNs! >= p.minNs && e.pid !== p.self;
    syscall.on("read:return").where(slowOnly, params).on(print("R", "read"));
    syscall.on("pread64:return").where(slowOnly, params).on(print("R", "pread64"));
    syscall.on("readv:return").where(slowOnly, params).on(print("R", "readv"));
    syscall.on("preadv:return").where(slowOnly, params).on(print("R", "preadv"));
    syscall.on("write:return").where(slowOnly, params).on(print("W", "write"));
    syscall.on("pwrite64:return").where(slowOnly, params).on(print("W", "pwrite64"));
    syscall.on("writev:return").where(slowOnly, params).on(print("W", "writev"));
    syscall.on("pwritev:return").where(slowOnly, params).on(print("W", "pwritev"));
    return (summary) => {
      if (!o.json) {
        console.error(
          `fileslower: ${slow} reads and writes of ${o["min-ms"]} ms or more in ` +
            `${(summary.elapsedMs / 1000).toFixed(1)} s` +
            (summary.dropped ? `, ${summary.dropped} lost (ring buffer full)` : ""),
        );
      }
    };
  },
});
