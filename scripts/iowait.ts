/**
 * iowait: which threads wait for I/O, how often and for how long: a log2 histogram of wait
 * times in microseconds per process, with count, total, mean, p50, p99 and max under each.
 * Everything is counted and timed in the kernel; only the histograms reach JavaScript.
 *
 *   deno run -A scripts/iowait.ts --demo                a built-in workload of direct reads
 *   deno run -A scripts/iowait.ts -a -d 10s --top 5     the 5 processes that waited longest
 *   deno run -A scripts/iowait.ts -p 1234 -i 1s --json  one process, each second
 *
 * What is measured: io:wait-done's `waitNs`, from a thread blocking in io_schedule() (switched
 * out with `in_iowait` set: io:wait-start) until it runs again (io:wait-done), per [comm, pid]
 * of that thread; that is off-CPU time waiting for I/O, including the time between the I/O's
 * completion and the thread being scheduled. Only threads that block show: for a direct read
 * or write, a page not yet in the cache (readahead's included, while in flight), fsync, a
 * buffer lock. I/O that nobody waits for (writeback, readahead no one needs yet) never shows.
 * The process filters (-p, -c) apply to the thread that waits.
 *
 * Which file: a wait is seen in the scheduler, where the buffer waited for is not known; the
 * io provider gives each wait the file of the I/O that names the thread as its waiter (direct
 * and synchronous I/O: exact), else of the last I/O the thread submitted within the second
 * before (page-cache reads: inferred). `--files` adds the total wait per process and file.
 *
 * JSON (`--json`, `--format ndjson`): records of the `table` type named `processes` (with -i one
 * per interval, then one of the rest), rows `{ comm, pid, count, total_us, mean_us, p50_us,
 * p99_us, min_us, max_us, buckets: [{ low, high, count }] }`, summary `{ unit: "us", lost }`;
 * with --files each followed by one named `files`, rows `{ comm, pid, file, count, total_us }`,
 * summary `{ lost }`; each the top N by total wait, largest first. `lost`: the updates the
 * kernel could not make because the map was full.
 *
 * @module
 */
import {
  type AggregationData,
  type AggregationRow,
  formatAggregation,
  intervalHeader,
  io,
  printable,
} from "../mod.ts";
import { micros, recipe, summarize } from "../recipe.ts";

/**
 * The demo: 2048 direct 4 KiB reads by one dd of an 8 MiB file under /var/tmp, most of them a
 * wait (a read that completes before its reader gets to sleep is not one); the file is
 * unlinked as soon as it is open, so it is gone even if the run is cut short.
 */
const DEMO = `f=$(mktemp /var/tmp/iowait.XXXXXX) && exec 3<>"$f" && rm -f "$f" && ` +
  `dd if=/dev/zero of=/dev/fd/3 bs=1M count=8 oflag=direct status=none && ` +
  `dd if=/dev/fd/3 of=/dev/null bs=4k count=2048 iflag=direct status=none`;

interface Waiter {
  comm: string;
  pid: number;
  count: number;
  total_us: number;
  mean_us: number;
  p50_us: number | undefined;
  p99_us: number | undefined;
  min_us: number;
  max_us: number;
  buckets: { low: number | null; high: number | null; count: number }[];
  /** The row as a one-key aggregation, to print as bpftrace does. */
  hist: AggregationData;
}

function waiter(data: AggregationData, row: AggregationRow): Waiter[] {
  const v = row.value;
  if (v.kind !== "hist" || !v.stats || v.stats.count === 0) return [];
  const s = summarize(v)!;
  return [{
    comm: String(row.key[0]),
    pid: Number(row.key[1]),
    count: s.count,
    total_us: v.stats.sum,
    mean_us: s.mean,
    p50_us: s.p50,
    p99_us: s.p99,
    min_us: s.min,
    max_us: s.max,
    buckets: s.buckets,
    hist: { ...data, keyNames: [], lost: 0, rows: [row] },
  }];
}

/** Prints one interval's histograms: set up with the probes. */
let intervalReport: ((data: AggregationData[]) => void) | undefined;

await recipe({
  name: "iowait",
  description: "Who waits for I/O, for how long, on which file: wait times (io:wait-start to\n" +
    "io:wait-done) per process as log2 histograms in microseconds, timed in the kernel;\n" +
    "with --files, the total per process and file (the thread's last submitted I/O).",
  examples: [
    "iowait.ts --demo                       trace a built-in workload of direct reads",
    "iowait.ts -a -d 10s --top 5            the 5 processes that waited longest",
    "iowait.ts -p 1234 -i 1s --json         one process, each second",
  ],
  options: {
    top: {
      type: "number",
      default: 10,
      min: 1,
      integer: true,
      help: "how many processes to show, longest total wait first",
    },
    files: { type: "boolean", short: "f", help: "also total wait per process and file" },
  },
  demo: DEMO,
  setup(o) {
    const waits = io.on("wait-done").hist((e) => e.waitNs / 1000, {
      by: (e) => [e.comm, e.pid],
      clear: o.interval !== undefined,
      stats: true,
      title: "wait_usecs",
    });
    const perFile = o.files
      ? io.on("wait-done").stats((e) => e.waitNs / 1000, {
        by: (e) => [e.comm, e.pid, e.file.fi_pathname],
        clear: o.interval !== undefined,
        title: "wait_usecs_per_file",
      })
      : undefined;
    const fileRows = (data?: AggregationData) =>
      (data?.rows ?? []).flatMap((r) =>
        r.value.kind === "stats"
          ? [{
            comm: String(r.key[0]),
            pid: Number(r.key[1]),
            file: String(r.key[2]),
            count: r.value.value.count,
            total_us: r.value.value.sum,
          }]
          : []
      ).sort((a, b) => b.total_us - a.total_us).slice(0, o.top);
    const report = (data?: AggregationData, files?: AggregationData) => {
      // The longest total wait last in text, next to the prompt; first in JSON.
      const all = (data?.rows ?? []).flatMap((r) => waiter(data!, r))
        .sort((a, b) => b.total_us - a.total_us || a.pid - b.pid).slice(0, o.top);
      if (o.records) {
        o.records.table("processes", all.map(({ hist: _, ...w }) => w), {
          unit: "us",
          lost: data?.lost ?? 0,
        });
        if (perFile) o.records.table("files", fileRows(files), { lost: files?.lost ?? 0 });
        return;
      }
      if (all.length === 0) console.log("iowait: no thread waited for I/O");
      for (const w of all.reverse()) {
        console.log(formatAggregation(w.hist));
        console.log(
          `count ${w.count}, total ${micros(w.total_us)}, mean ${micros(w.mean_us)}, ` +
            `p50 ${micros(w.p50_us)}, p99 ${micros(w.p99_us)}, max ${micros(w.max_us)}\n`,
        );
      }
      if (perFile) {
        console.log(
          `${"COMM".padEnd(16)} ${"PID".padStart(7)} ${"WAITS".padStart(7)} ${
            "TOTAL".padStart(10)
          } FILE`,
        );
        for (const f of fileRows(files)) {
          console.log(
            `${printable(f.comm).padEnd(16)} ${String(f.pid).padStart(7)} ${
              String(f.count).padStart(7)
            } ` +
              `${micros(f.total_us).padStart(10)} ${printable(f.file)}`,
          );
        }
      }
      if (data?.lost) {
        console.log(`iowait: ${data.lost} updates lost: more processes than the map holds`);
      }
    };
    intervalReport = (data) => {
      if (!o.records) console.log(intervalHeader());
      report(
        data.find((d) => d.name === waits.name),
        data.find((d) => d.name === perFile?.name),
      );
    };
    return () => report(waits.read(), perFile?.read());
  },
  run: () => ({ onInterval: (data) => intervalReport?.(data) }),
});
