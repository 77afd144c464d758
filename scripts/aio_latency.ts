/**
 * aio_latency: the latency of each Linux native AIO request, from io_submit to its reap by
 * io_getevents or io_pgetevents (io_uring requests: until the kernel posts the completion),
 * as log2 histograms in microseconds per process, file or opcode, like biolatency. Everything
 * is counted in the kernel; only the histograms reach JavaScript.
 *
 *   tools/run scripts/aio_latency.ts --demo               a built-in AIO workload, traced
 *   tools/run scripts/aio_latency.ts -p 1234 -i 1s        one process, a histogram each second
 *   tools/run scripts/aio_latency.ts -c "fio job.fio" --by fd
 *
 * Under the histograms: a note when most requests submitted were never reaped with a syscall
 * (the blind spot: the application reaps from the mapped ring in user space), and on stderr
 * the aio provider's counters (submitted, reaped and timed, reaped without a seen submit,
 * cancelled, lost).
 *
 * JSON (`--json`, `--format ndjson`): records of the `table` type named `groups` (with -i one
 * per interval, then one of the rest), a row per histogram, `{ kind: "aio" | "uring", key,
 * count, mean_us, p50_us, p99_us, max_us, buckets: [{ low, high, count }] }`, `key` as the text
 * names the histogram ("dd (pid 42)", "pid 42 fd 3 /var/tmp/f", "PREAD", "io_uring READ"). The
 * last table's summary holds the counters and the blind spot: `{ submitted, reaped, unmatched,
 * cancelled, lost, blind_spot }`, `blind_spot` null when there is none.
 */
import {
  type AggregationData,
  aio,
  AIO_COUNTERS,
  formatAggregation,
  intervalHeader,
  printable,
  uringOpName,
} from "../mod.ts";
import { recipe, summarize, summaryLine } from "../recipe.ts";
import { AioContext, alignedBuffer, Fd, PREAD, PWRITE } from "../workload.ts";

const MODES = ["process", "fd", "opcode"] as const;
type Mode = (typeof MODES)[number];

/** The demo: random 4 KiB reads and writes at depth 8 with libaio on a temporary file. */
function workload(dir: string): void {
  const size = 32 << 20;
  const depth = 8;
  const total = 4096;
  const path = Deno.makeTempFileSync({ dir, prefix: "aio_latency-" });
  // Written, not a sparse file: reads of holes never reach the device, and the histogram
  // would show microseconds of page zeroing instead of the device's latency.
  {
    using out = Deno.openSync(path, { write: true });
    const chunk = new Uint8Array(1 << 20).fill(0xa5);
    for (let written = 0; written < size; written += chunk.length) out.writeSync(chunk);
    out.syncSync();
  }
  let fd;
  try {
    fd = new Fd(path, { direct: true });
  } catch {
    fd = new Fd(path); // a filesystem without O_DIRECT (tmpfs): buffered, still AIO
  }
  // Gone from the directory at once: nothing is left behind however the run ends.
  Deno.removeSync(path);
  using file = fd;
  using ctx = new AioContext(depth);
  const buffers = Array.from({ length: depth }, () => alignedBuffer(4096));
  for (let done = 0; done < total; done += depth) {
    const requests = buffers.map((b, i) => ({
      opcode: (done / depth + i) % 5 === 0 ? PWRITE : PREAD,
      fd: file.fd,
      buf: b.address,
      nbytes: 4096,
      offset: 4096 * Math.floor(Math.random() * (size / 4096)),
      data: BigInt(done + i),
    }));
    const n = ctx.submit(requests);
    for (let reaped = 0; reaped < n;) reaped += ctx.reap(1, n - reaped).length;
  }
}

// The demo runs this same file as `aio_latency.ts --workload DIR`: the workload's entry
// point, not an option of the recipe.
if (Deno.args[0] === "--workload") {
  workload(Deno.args[1]);
  Deno.exit(0);
}

/** The counters of the line on stderr (and of the last table's summary in JSON). */
interface Counts {
  submitted: number;
  reaped: number;
  unmatched: number;
  cancelled: number;
  lost: number;
}

function counts(counters: Record<string, number>): Counts {
  const c = (name: keyof Counts) => counters[AIO_COUNTERS[name]] ?? 0;
  return {
    submitted: c("submitted"),
    reaped: c("reaped"),
    unmatched: c("unmatched"),
    cancelled: c("cancelled"),
    lost: c("lost"),
  };
}

/** What the counters say about requests this tool cannot time. */
function blindSpot({ submitted, reaped }: Counts): string | undefined {
  if (submitted === 0 || reaped >= submitted * 0.5) return undefined;
  return `${submitted - reaped} of ${submitted} requests submitted with io_submit were never ` +
    `reaped with io_getevents or io_pgetevents: the application reaps completions from the ` +
    `mapped ring in user space (e.g. fio --userspace_reap=1), which no syscall shows, so ` +
    `their latency cannot be measured here`;
}

/** Where fd `fd` of process `pid` points now; "" when it is closed or the process gone. */
function fdPath(pid: number, fd: number): string {
  try {
    return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return "";
  }
}

/** Prints one interval's histograms: set up with the probes. */
let intervalReport: ((data: AggregationData[]) => void) | undefined;

// This same file runs the workload, wherever it came from (a path or a URL).
const remote = !import.meta.url.startsWith("file:");

await recipe({
  name: "aio_latency",
  description: "Latency of Linux native AIO requests (io_submit to reap) and io_uring requests\n" +
    "(submission to completion) as log2 histograms in microseconds, timed in the kernel.",
  examples: [
    "aio_latency --demo                     trace a built-in AIO workload (libaio, O_DIRECT)",
    "aio_latency -p 1234 -i 1s              one process, a histogram each second",
    'aio_latency -c "fio job.fio" --by fd   one command, a histogram per file',
  ],
  options: {
    by: {
      type: "string",
      default: "process",
      choices: MODES,
      help: "a histogram per BY; fd names each fd's file",
    },
  },
  demo: [
    Deno.execPath(),
    "run",
    "-A",
    ...(remote ? ["--no-lock"] : []),
    import.meta.url,
    "--workload",
    "/var/tmp",
  ],
  setup(o) {
    const by = o.by as Mode;
    const reaps = aio.on("reap");
    // io_uring is timed where the kernel has its tracepoints; elsewhere a note says it is not.
    const uring = aio.on("uring", undefined, { optional: true });
    // Titled apart: each interval's data is told apart by name.
    const clear = o.interval !== undefined;
    // With --metrics: tsprobe_aio_latency_seconds{comm, pid | pid, fd | op} and
    // tsprobe_io_uring_latency_seconds{opcode}, in seconds.
    const seconds = { unit: "seconds", scale: 1e-6 };
    const options = {
      clear,
      stats: true,
      title: "aio usecs",
      metric: { name: "aio_latency", help: "AIO request latency, io_submit to reap", ...seconds },
    };
    // One histogram per key; it keeps sum, min and max beside its buckets, for the summaries.
    const inMicros = (e: { latencyNs: number }) => e.latencyNs / 1000;
    const hist = by === "process"
      ? reaps.hist(inMicros, { by: (e) => ({ comm: e.comm, pid: e.pid }), ...options })
      : by === "fd"
      ? reaps.hist(inMicros, { by: (e) => ({ pid: e.pid, fd: e.fd }), ...options })
      : reaps.hist(inMicros, { by: (e) => ({ op: e.op }), ...options });
    const uringHist = uring.hist(inMicros, {
      by: (e) => ({ opcode: e.opcode }),
      clear,
      stats: true,
      title: "uring usecs",
      metric: {
        name: "io_uring_latency",
        help: "io_uring request latency, submission to completion",
        labelValues: { opcode: (op) => uringOpName(op) },
        ...seconds,
      },
    });

    // Files are named while their processes still hold them open: the keys seen are looked
    // up every 100 ms, and their paths kept for the report (which may come after the exit).
    const fdNames = new Map<string, string>();
    const namer = by !== "fd" ? undefined : setInterval(() => {
      for (const row of hist.read()?.rows ?? []) {
        const id = `${row.key[0]}:${row.key[1]}`;
        if (!fdNames.get(id)) fdNames.set(id, fdPath(row.key[0] as number, row.key[1] as number));
      }
    }, 100);

    const label = (k: unknown[], kind: "aio" | "uring"): string => {
      if (kind === "uring") return `io_uring ${uringOpName(k[0])}`;
      switch (by) {
        case "process":
          return `${k[0]} (pid ${k[1]})`;
        case "fd":
          return `pid ${k[0]} fd ${k[1]} ${fdNames.get(`${k[0]}:${k[1]}`) || "(closed)"}`;
        case "opcode":
          return String(k[0]);
      }
    };

    const groups = (kind: "aio" | "uring", data: AggregationData | undefined) =>
      (data?.rows ?? []).flatMap((row) => {
        const s = summarize(row.value);
        if (!s) return [];
        const key = label(row.key, kind);
        // The text names the histogram after the comm or path: escaped there (records escape
        // their own).
        const name = `${kind} usecs, ${printable(key)}`;
        return [{
          kind,
          key,
          s,
          hist: { ...data!, name, keyNames: [], rows: [{ ...row, key: [] }] },
        }];
      });

    /**
     * Prints the histograms: those of an interval (`snapshot`, in the order they were made:
     * aio, then io_uring) or, at the end (with the run's counters), what is left in the kernel.
     */
    const report = (
      snapshot: (AggregationData | undefined)[],
      end?: Counts,
    ) => {
      const all = [...groups("aio", snapshot[0]), ...groups("uring", snapshot[1])];
      const blind = end && blindSpot(end);
      if (o.records) {
        const rows = all.map(({ kind, key, s }) => ({
          kind,
          key,
          count: s.count,
          mean_us: s.mean,
          p50_us: s.p50,
          p99_us: s.p99,
          max_us: s.max,
          buckets: s.buckets,
        }));
        o.records.table("groups", rows, end && { ...end, blind_spot: blind ?? null });
        return;
      }
      if (!end) console.log(intervalHeader());
      if (all.length === 0 && end) console.log("aio_latency: no AIO request was reaped");
      for (const g of all) console.log(`${formatAggregation(g.hist)}\n${summaryLine(g.s)}\n`);
      if (blind) console.log(`aio_latency: blind spot: ${blind}`);
    };

    // Each interval's data comes as read (and cleared) by the session: nothing is lost.
    intervalReport = (data) =>
      report([data.find((d) => d.name === hist.name), data.find((d) => d.name === uringHist.name)]);
    return (summary) => {
      clearInterval(namer);
      const c = counts(summary.counters);
      report([hist.read(), uringHist.read()], c);
      if (!o.records) {
        console.error(
          `aio_latency: ${c.submitted} submitted, ${c.reaped} reaped and timed, ${c.unmatched} ` +
            `reaped without a seen submit, ${c.cancelled} cancelled, ${c.lost} lost`,
        );
      }
    };
  },
  run: () => ({ onInterval: (data) => intervalReport?.(data) }),
});
