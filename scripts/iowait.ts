/**
 * iowait: which threads wait for I/O, how often and for how long: a log2 histogram of wait
 * times in microseconds per process, with count, total, mean, p50, p99 and max under each.
 * Everything is counted and timed in the kernel; only the histograms reach JavaScript.
 *
 *   deno run -A scripts/iowait.ts                       a built-in workload of direct reads
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
 * What it cannot say: on this kernel a wait is seen in the scheduler, where the buffer waited
 * for is not known, so wait events carry no `buf`, `dev` or `file`: no disk and no file here
 * (biosnoop and iotop have those).
 *
 * JSON (`--json`; with -i one object per line and interval): `{ unit: "us", processes: [{ comm,
 * pid, count, total_us, mean_us, p50_us, p99_us, min_us, max_us, buckets: [{ low, high, count
 * }] }], lost }`, the top N by total wait, largest first.
 *
 * @module
 */
import { type AggregationData, type AggregationRow, formatAggregation, io } from "../mod.ts";
import { recipe } from "../recipe.ts";
import { quantile } from "../runtime/aggregate/data.ts";

/**
 * The demo: 2048 direct 4 KiB reads by one dd of an 8 MiB file under /var/tmp, most of them a
 * wait (a read that completes before its reader gets to sleep is not one); the file is
 * unlinked as soon as it is open, so it is gone even if the run is cut short.
 */
const DEMO = `f=$(mktemp /var/tmp/iowait.XXXXXX) && exec 3<>"$f" && rm -f "$f" && ` +
  `dd if=/dev/zero of=/dev/fd/3 bs=1M count=8 oflag=direct status=none && ` +
  `dd if=/dev/fd/3 of=/dev/null bs=4k count=2048 iflag=direct status=none`;

function usage(message: string): never {
  console.error(`iowait: ${message} (see --help)`);
  Deno.exit(2);
}

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

/** A quantile interpolated in its log2 bucket, bounded by the exact min and max. */
function within(q: number | undefined, s: { min: number; max: number }): number | undefined {
  return q === undefined ? undefined : Math.min(s.max, Math.max(s.min, q));
}

function waiter(data: AggregationData, row: AggregationRow): Waiter[] {
  const v = row.value;
  if (v.kind !== "hist" || !v.stats || v.stats.count === 0) return [];
  return [{
    comm: String(row.key[0]),
    pid: Number(row.key[1]),
    count: v.stats.count,
    total_us: v.stats.sum,
    mean_us: v.stats.sum / v.stats.count,
    p50_us: within(quantile(v.buckets, 0.5), v.stats),
    p99_us: within(quantile(v.buckets, 0.99), v.stats),
    min_us: v.stats.min,
    max_us: v.stats.max,
    buckets: v.buckets.filter((b) => b.count > 0).map((b) => ({
      low: Number.isFinite(b.low) ? b.low : null,
      high: b.high ?? null,
      count: b.count,
    })),
    hist: { ...data, keyNames: [], lost: 0, rows: [row] },
  }];
}

const us = (x: number | undefined) =>
  x === undefined
    ? "?"
    : x >= 1e6
    ? `${(x / 1e6).toFixed(2)} s`
    : x >= 1000
    ? `${(x / 1000).toFixed(2)} ms`
    : `${x.toFixed(1)} us`;

/** Prints one interval's histograms: set up with the probes. */
let intervalReport: ((data: AggregationData[]) => void) | undefined;

await recipe({
  name: "iowait",
  description: "Who waits for I/O and for how long: wait times (io:wait-start to io:wait-done)\n" +
    "per process as log2 histograms in microseconds, timed in the kernel. Waits carry no\n" +
    "disk or file: the scheduler, where they are seen, does not know the buffer.",
  examples: [
    "iowait.ts                              trace a built-in workload of direct reads",
    "iowait.ts -a -d 10s --top 5            the 5 processes that waited longest",
    "iowait.ts -p 1234 -i 1s --json         one process, each second",
  ],
  options: {
    top: {
      type: "number",
      default: 10,
      min: 1,
      help: "how many processes to show, longest total wait first",
    },
  },
  demo: DEMO,
  setup(o) {
    if (!Number.isInteger(o.top)) usage(`--top '${o.top}' is not a whole number`);
    const waits = io.on("wait-done").hist((e) => e.waitNs / 1000, {
      by: (e) => [e.comm, e.pid],
      clear: o.interval !== undefined,
      title: "wait_usecs",
    });
    const report = (data?: AggregationData) => {
      // The longest total wait last in text, next to the prompt; first in JSON.
      const all = (data?.rows ?? []).flatMap((r) => waiter(data!, r))
        .sort((a, b) => b.total_us - a.total_us || a.pid - b.pid).slice(0, o.top);
      if (o.json) {
        console.log(JSON.stringify({
          unit: "us",
          processes: all.map(({ hist: _, ...w }) => w),
          lost: data?.lost ?? 0,
        }));
        return;
      }
      if (all.length === 0) console.log("iowait: no thread waited for I/O");
      for (const w of all.reverse()) {
        console.log(formatAggregation(w.hist));
        console.log(
          `count ${w.count}, total ${us(w.total_us)}, mean ${us(w.mean_us)}, ` +
            `p50 ${us(w.p50_us)}, p99 ${us(w.p99_us)}, max ${us(w.max_us)}\n`,
        );
      }
      if (data?.lost) {
        console.log(`iowait: ${data.lost} updates lost: more processes than the map holds`);
      }
    };
    intervalReport = (data) => {
      if (!o.json) console.log(new Date().toTimeString().slice(0, 8));
      report(data.find((d) => d.name === waits.name));
    };
    return () => report(waits.read());
  },
  run: () => ({ onInterval: (data) => intervalReport?.(data) }),
});
