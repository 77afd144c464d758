/**
 * aio_latency: the latency of each Linux native AIO request, from io_submit to its reap by
 * io_getevents or io_pgetevents (io_uring requests: until the kernel posts the completion),
 * as log2 histograms in microseconds per process, file or opcode, like biolatency. Everything
 * is counted in the kernel; only the histograms reach JavaScript.
 *
 *   deno run -A scripts/aio_latency.ts                 a built-in AIO workload, traced
 *   deno run -A scripts/aio_latency.ts -p 1234 -i 1s   one process, a histogram each second
 *   deno run -A scripts/aio_latency.ts -c "fio job.fio" --by fd
 */
import { parseArgs } from "node:util";
import {
  type AggregationData,
  aio,
  AIO_COUNTERS,
  formatAggregation,
  parseDuration,
  printable,
  printableJson,
  quantile,
  run,
  type RunSummary,
  uringOpName,
} from "../mod.ts";
import { isUsageError, micros, programProblem } from "../recipe.ts";
import { AioContext, alignedBuffer, Fd, PREAD, PWRITE } from "../workload.ts";

const USAGE = `usage: aio_latency.ts [options]
Latency of Linux native AIO requests (io_submit to reap) and io_uring requests.

  (no target)           run a built-in AIO workload (libaio, O_DIRECT) and trace it
  --demo                the same, explicitly
  -p, --pid PID         trace this process
  -c, --command CMD     run CMD (through sh) and trace it and its children
  -a, --all             trace every process, until Ctrl-C or --duration
  -d, --duration D      stop after D (500ms, 10s, 2m)
  -i, --interval I      print (and reset) the histograms every I
  --by KEY              histograms per process (default), fd or opcode
  --json                print JSON instead of text
  -h, --help            this text`;

const MODES = ["process", "fd", "opcode"] as const;
type Mode = (typeof MODES)[number];

function usage(message: string): never {
  console.error(`aio_latency: ${message} (see --help)`);
  Deno.exit(2);
}

function parse() {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        demo: { type: "boolean" },
        pid: { type: "string", short: "p" },
        command: { type: "string", short: "c" },
        all: { type: "boolean", short: "a" },
        duration: { type: "string", short: "d" },
        interval: { type: "string", short: "i" },
        by: { type: "string", default: "process" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        // Internal: run the demo workload in a temporary file in this directory.
        workload: { type: "string" },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
  const o = parsed.values;
  if (!MODES.includes(o.by as Mode)) usage(`--by '${o.by}' is not one of ${MODES.join(", ")}`);
  const pid = o.pid === undefined ? undefined : Number(o.pid);
  if (pid !== undefined && (!Number.isInteger(pid) || pid <= 0)) {
    usage(`--pid '${o.pid}' is not a process id`);
  }
  if ([o.pid, o.command, o.all, o.demo].filter((x) => x !== undefined).length > 1) {
    usage("give at most one of --pid, --command, --all, --demo");
  }
  try {
    if (o.duration !== undefined) parseDuration(o.duration);
    if (o.interval !== undefined) parseDuration(o.interval, true);
  } catch (e) {
    usage((e as Error).message);
  }
  return { ...o, by: o.by as Mode, pid };
}

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

const opts = parse();
const problem = opts.command === undefined ? undefined : await programProblem(opts.command);
if (problem) usage(`--command '${opts.command}': ${problem}`);
if (opts.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (opts.workload) {
  workload(opts.workload);
  Deno.exit(0);
}

const demo = opts.pid === undefined && opts.command === undefined && !opts.all;

let command: string[] | undefined;
if (demo) {
  // This same file runs the workload, wherever it came from (a path or a URL).
  const remote = !import.meta.url.startsWith("file:");
  command = [
    Deno.execPath(),
    "run",
    "-A",
    ...(remote ? ["--no-lock"] : []),
    import.meta.url,
    "--workload",
    "/var/tmp",
  ];
  if (!opts.json) console.error("aio_latency: tracing a built-in workload (libaio, 4096 requests)");
} else if (opts.command) {
  command = ["sh", "-c", opts.command];
}

const reaps = aio.on("reap");
// io_uring is timed where the kernel has its tracepoints; elsewhere a note says it is not.
const uring = aio.on("uring", undefined, { optional: true });
const clear = opts.interval !== undefined;
// One histogram per key; it keeps count, sum, min and max beside its buckets.
const inMicros = (e: { latencyNs: number }) => e.latencyNs / 1000;
const hist = opts.by === "process"
  ? reaps.hist(inMicros, { by: (e) => [e.comm, e.pid], clear })
  : opts.by === "fd"
  ? reaps.hist(inMicros, { by: (e) => [e.pid, e.fd], clear })
  : reaps.hist(inMicros, { by: (e) => e.op, clear });
const uringHist = uring.hist(inMicros, { by: (e) => e.opcode, clear });

function label(k: unknown[], kind: "aio" | "uring"): string {
  if (kind === "uring") return `io_uring ${uringOpName(k[0])}`;
  switch (opts.by) {
    case "process":
      return `${k[0]} (pid ${k[1]})`;
    case "fd":
      return `pid ${k[0]} fd ${k[1]} ${fdNames.get(`${k[0]}:${k[1]}`) || "(closed)"}`;
    case "opcode":
      return String(k[0]);
  }
}

interface Group {
  kind: "aio" | "uring";
  key: string;
  count: number;
  meanUs: number;
  p50Us: number | undefined;
  p99Us: number | undefined;
  maxUs: number;
  hist: AggregationData;
}

function groups(kind: "aio" | "uring", data: AggregationData | undefined): Group[] {
  return (data?.rows ?? []).flatMap((row) => {
    if (row.value.kind !== "hist" || !row.value.stats) return [];
    const { buckets, stats } = row.value;
    // The text names the histogram after the comm or path: escaped there (JSON escapes its own).
    const name = `${kind} usecs, ${printable(label(row.key, kind))}`;
    return [{
      kind,
      key: label(row.key, kind),
      count: stats.count,
      meanUs: stats.sum / stats.count,
      p50Us: quantile(buckets, 0.5, stats),
      p99Us: quantile(buckets, 0.99, stats),
      maxUs: stats.max,
      hist: { ...data!, name, keyNames: [], rows: [{ key: [], value: row.value }] },
    }];
  });
}

/** What the counters say about requests this tool cannot time. */
function blindSpot(counters: Record<string, number>): string | undefined {
  const submitted = counters[AIO_COUNTERS.submitted] ?? 0;
  const reaped = counters[AIO_COUNTERS.reaped] ?? 0;
  if (submitted === 0 || reaped >= submitted * 0.5) return undefined;
  return `${submitted - reaped} of ${submitted} requests submitted with io_submit were never ` +
    `reaped with io_getevents or io_pgetevents: the application reaps completions from the ` +
    `mapped ring in user space (e.g. fio --userspace_reap=1), which no syscall shows, so ` +
    `their latency cannot be measured here`;
}

/**
 * Prints the histograms: those of an interval (`snapshot`, in the order they were made: aio,
 * then io_uring) or, at the end, what is left in the kernel.
 */
function report(
  counters: Record<string, number>,
  final: boolean,
  snapshot = [hist.read(), uringHist.read()],
): void {
  const all = [...groups("aio", snapshot[0]), ...groups("uring", snapshot[1])];
  const blind = blindSpot(counters);
  if (opts.json) {
    console.log(printableJson({
      groups: all.map((g) => ({
        kind: g.kind,
        key: g.key,
        count: g.count,
        mean_us: g.meanUs,
        p50_us: g.p50Us,
        p99_us: g.p99Us,
        max_us: g.maxUs,
        buckets: g.hist.rows[0].value.kind === "hist"
          ? g.hist.rows[0].value.buckets.filter((b) => b.count).map((b) => ({
            low: Number.isFinite(b.low) ? b.low : null,
            high: b.high ?? null,
            count: b.count,
          }))
          : [],
      })),
      counters,
      blind_spot: blind ?? null,
    }));
    return;
  }
  if (all.length === 0 && final) console.log("aio_latency: no AIO request was reaped");
  for (const g of all) {
    console.log(formatAggregation(g.hist));
    console.log(
      `count ${g.count}, mean ${micros(g.meanUs)}, p50 ${micros(g.p50Us)}, p99 ${
        micros(g.p99Us)
      }, ` +
        `max ${micros(g.maxUs)}\n`,
    );
  }
  if (blind) console.log(`aio_latency: blind spot: ${blind}`);
}

/** Where fd `fd` of process `pid` points now; "" when it is closed or the process gone. */
function fdPath(pid: number, fd: number): string {
  try {
    return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return "";
  }
}

// Files are named while their processes still hold them open: the keys seen are looked up
// every 100 ms, and their paths kept for the report (which may come after the exit).
const fdNames = new Map<string, string>();
const namer = opts.by !== "fd" ? undefined : setInterval(() => {
  for (const row of hist.read()?.rows ?? []) {
    const id = `${row.key[0]}:${row.key[1]}`;
    if (!fdNames.get(id)) fdNames.set(id, fdPath(row.key[0] as number, row.key[1] as number));
  }
}, 100);
const summary: RunSummary = await run({
  pid: opts.pid,
  command,
  duration: opts.duration,
  interval: opts.interval,
  // Each interval's data comes as read (and cleared) by the session: nothing is lost.
  onInterval: (data) => report({}, false, data),
  printAggregations: false,
}).catch((e): never => {
  // A pid that is not there: one line, as for the options above.
  if (isUsageError(e)) usage((e as Error).message);
  throw e;
});
clearInterval(namer);
report(summary.counters, true);
if (!opts.json) {
  const c = summary.counters;
  console.error(
    `aio_latency: ${c[AIO_COUNTERS.submitted] ?? 0} submitted, ${c[AIO_COUNTERS.reaped] ?? 0} ` +
      `reaped and timed, ${c[AIO_COUNTERS.unmatched] ?? 0} reaped without a seen submit, ` +
      `${c[AIO_COUNTERS.cancelled] ?? 0} cancelled, ${c[AIO_COUNTERS.lost] ?? 0} lost`,
  );
}
