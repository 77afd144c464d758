/**
 * biolatency: block I/O latency as a log2 histogram in microseconds per disk (and, with
 * `--flags`, per kind of I/O), with count, mean, p50, p99 and max under each, like the BCC and
 * bpftrace tools of that name. Every I/O is timed and counted in the kernel; only the
 * histograms reach JavaScript.
 *
 *   deno run -A scripts/biolatency.ts --demo                 a built-in direct-I/O workload
 *   deno run -A scripts/biolatency.ts -a -d 10s --disk vda   every process, one disk, 10 s
 *   deno run -A scripts/biolatency.ts -a -i 1s --flags       reads and writes apart, each second
 *   deno run -A scripts/biolatency.ts -c "fio job.fio" --queued --json
 *
 * What is timed: by default io:done's `latencyNs`, from the I/O's issue to the device
 * (block_rq_issue; block_bio_queue on bio-based devices such as zram or device-mapper, which
 * have no queue of their own) to its completion: the device's service time, the I/O that
 * /proc/diskstats counts. `--queued` starts the clock earlier, when the request is created in
 * the submitter's context (block:block_io_start, or block_getrq before Linux 6.5), so the time in the I/O scheduler and the
 * queue is included; on bio-based devices it is the same as the default.
 *
 * How --queued pairs the ends: block_io_start carries no request pointer, so spans pair it
 * with io:done in the kernel by device and start sector (absolute on the disk at both ends).
 * block_io_start names the whole disk where io:done names the partition, and the kernel cannot
 * map one to the other; so each partition that exists when tracing starts gets a span of its
 * own, whose starts are its disk's requests in its sectors, keyed by its number; so does the
 * rest of each partitioned disk (the sectors before its first and after its last partition:
 * partition tables); one span pairs the requests of every disk without partitions. With
 * --disk, one span for that device. Not paired: the requests of partitions created while
 * tracing; a request that another I/O joins at its front (a front merge), which has moved its
 * start sector; the flushes the kernel makes itself. stderr says how many of the completions
 * timed from their issue were paired.
 *
 * `--disk` compiles to a device-number comparison in the kernel, so the other disks' I/O is
 * dropped before it is timed. `--flags` keys by `b_flags & (B_READ | B_WRITE | B_ASYNC)`,
 * computed in the kernel: R and W are synchronous reads and writes, RA readahead, WA writeback,
 * "-" flushes and discards (neither a read nor a write).
 *
 * JSON (`--json`, `--format ndjson`): records of the `table` type named `disks` (with -i one
 * per interval, each of the I/O since the last, then one of the rest), a row per histogram,
 * `{ disk, flags?, count, mean_us, p50_us, p99_us, min_us, max_us, buckets: [{ low, high, count
 * }] }`, largest count last; `low` null stands for negative values, `high` null for no upper
 * bound. Its summary: `{ unit: "us", measured: "issue" | "queued", lost }`, `lost` the updates
 * the kernel could not make because a map was full.
 *
 * @module
 */
import {
  type Aggregation,
  type AggregationData,
  type AggregationRow,
  B,
  type BufInfo,
  type DevInfo,
  formatAggregation,
  intervalHeader,
  io,
  type IoDoneEvent,
  type Params,
  requestCreated,
  span,
  type Stream,
  type TracepointEventOf,
} from "../mod.ts";
import { micros, recipe, summarize, UsageError } from "../recipe.ts";

/** The bits `--flags` keys by, and how each combination prints. */
const FLAG_MASK = B.B_READ | B.B_WRITE | B.B_ASYNC;
const FLAG_LABELS: Record<number, string> = {
  [B.B_READ]: "R",
  [B.B_WRITE]: "W",
  [B.B_READ | B.B_ASYNC]: "RA",
  [B.B_WRITE | B.B_ASYNC]: "WA",
};
const flagLabel = (bits: number) => FLAG_LABELS[bits] ?? "-";

/**
 * The demo: 512 direct 64 KiB writes and 2048 direct 4 KiB reads of a file under /var/tmp.
 * The file is unlinked as soon as it is open, so it is gone even if the run is cut short.
 */
const DEMO = `f=$(mktemp /var/tmp/biolatency.XXXXXX) && exec 3<>"$f" && rm -f "$f" && ` +
  `dd if=/dev/zero of=/dev/fd/3 bs=64k count=512 oflag=direct status=none && ` +
  `dd if=/dev/fd/3 of=/dev/null bs=4k count=2048 iflag=direct status=none`;

/** The sysfs directory of block device `name` (a disk or a partition), resolved. */
function sysBlock(name: string): string | undefined {
  try {
    return Deno.realPathSync(`/sys/class/block/${name}`);
  } catch {
    return undefined;
  }
}

/** The kernel's number (major << 20 | minor) in a sysfs `dev` file ("7:0"). */
function devNumber(path: string): number {
  const [major, minor] = Deno.readTextFileSync(path).split(":");
  return Number(major) << 20 | Number(minor);
}

const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

/**
 * Which requests of a whole disk (block_io_start's `dev`) end on device `part`: those in
 * sectors [first, end), or with `outside` those not in them.
 */
interface Range {
  disk: number;
  part: number;
  first: number;
  end: number;
  outside: boolean;
}

/** The ranges of the disk or partition `name`, which has sysfs directory `sys`. */
function ranges(name: string, sys: string): Range[] {
  const size = Number(Deno.readTextFileSync(`${sys}/size`));
  if (exists(`${sys}/partition`)) {
    const first = Number(Deno.readTextFileSync(`${sys}/start`));
    const disk = devNumber(`${sys}/../dev`);
    return [{ disk, part: devNumber(`${sys}/dev`), first, end: first + size, outside: false }];
  }
  const disk = devNumber(`${sys}/dev`);
  const parts = [...Deno.readDirSync(sys)].filter((e) => exists(`${sys}/${e.name}/partition`))
    .flatMap((e) => ranges(`${name}/${e.name}`, `${sys}/${e.name}`));
  if (parts.length === 0) return [{ disk, part: disk, first: 0, end: size, outside: false }];
  const first = Math.min(...parts.map((r) => r.first));
  const end = Math.max(...parts.map((r) => r.end));
  return [{ disk, part: disk, first, end, outside: true }, ...parts];
}

/** Whether disk `name` queues requests (blk-mq), where io:start is block_rq_issue. */
function requestBased(name: string): boolean {
  const sys = sysBlock(name);
  // A partition's queue is its disk's.
  return sys !== undefined && (exists(`${sys}/mq`) || exists(`${sys}/../mq`));
}

interface Group {
  disk: string;
  flags?: string;
  count: number;
  mean_us: number;
  p50_us: number | undefined;
  p99_us: number | undefined;
  min_us: number;
  max_us: number;
  buckets: { low: number | null; high: number | null; count: number }[];
  /** The row as a one-key aggregation, to print as bpftrace does. */
  hist: AggregationData;
}

function group(data: AggregationData, row: AggregationRow, flags: boolean): Group[] {
  const v = row.value;
  if (v.kind !== "hist" || !v.stats || v.stats.count === 0) return [];
  const disk = String(row.key[0]);
  const key = flags ? [disk, flagLabel(Number(row.key[1]))] : [disk];
  const s = summarize(v)!;
  return [{
    disk,
    ...(flags && { flags: key[1] }),
    count: s.count,
    mean_us: s.mean,
    p50_us: s.p50,
    p99_us: s.p99,
    min_us: s.min,
    max_us: s.max,
    buckets: s.buckets,
    hist: { ...data, keyNames: [], lost: 0, rows: [{ key, value: v }] },
  }];
}

/** Prints the histograms of one interval: set up with the probes, called by the session. */
let intervalReport: ((data: AggregationData[]) => void) | undefined;

await recipe({
  name: "biolatency",
  description: "Block I/O latency per disk as log2 histograms in microseconds, timed in the " +
    "kernel:\nby default from the I/O's issue to the device to its completion (io:done's " +
    "latencyNs);\nwith --queued from the request's creation, scheduler and queue time included.",
  examples: [
    "biolatency.ts --demo                   trace a built-in direct-I/O workload",
    "biolatency.ts -a -d 10s --disk vda     every process's I/O on vda for 10 s",
    "biolatency.ts -a -i 1s --flags         R, W, RA (readahead), WA (writeback) apart, each second",
    'biolatency.ts -c "fio job.fio" --queued --json',
  ],
  options: {
    disk: { type: "string", help: "only this disk or partition (loop0, vda1)" },
    flags: {
      type: "boolean",
      help: "a histogram per disk and kind: R, W, RA (readahead), WA (writeback), - (other)",
    },
    queued: {
      type: "boolean",
      help: "time from the request's creation (block_io_start), scheduler and queue included",
    },
  },
  demo: DEMO,
  setup(o) {
    const disk = o.disk?.replace(/^\/dev\//, "");
    if (disk !== undefined && !sysBlock(disk)) {
      throw new UsageError(`--disk '${o.disk}' is not a block device`);
    }
    const clear = o.interval !== undefined;
    const done = disk === undefined
      ? io.on("done")
      : io.on("done").where((e, p) => e.dev.dev_statname === p.disk, { disk });
    // A done whose start came before tracing has no latency (-1 in the kernel): left out.
    const timed = done.where((e) => e.latencyNs! >= 0);
    // The key, computed in the kernel: the disk, and the kind of I/O with --flags.
    type Keyed = { dev: DevInfo; buf: BufInfo };
    const by = o.flags
      ? (e: Keyed, p: Params) => ({
        disk: e.dev.dev_statname,
        flags: e.buf.b_flags & (p.mask as number),
      })
      : (e: Keyed) => ({ disk: e.dev.dev_statname });
    const params = { mask: FLAG_MASK };
    const issued = timed.hist((e) => e.latencyNs! / 1000, {
      by,
      params,
      clear,
      stats: true,
      title: "usecs",
      // With --metrics: tsprobe_block_io_latency_seconds{disk="vda"} (and flags="R").
      metric: {
        name: "block_io_latency",
        help: "Block I/O latency, from issue to the device to completion",
        unit: "seconds",
        scale: 1e-6,
        labelValues: { flags: (f) => flagLabel(Number(f)) },
      },
    });
    if (o.metrics !== undefined) {
      // IOPS are the histogram's _count; bytes need their own sum.
      done.sum((e) => e.buf.b_bcount, {
        by: (e) => ({ disk: e.dev.dev_statname }),
        title: "bytes",
        metric: {
          name: "block_io",
          help: "Block I/O bytes completed",
          unit: "bytes",
          monotonic: true,
        },
      });
    }
    // With --queued: spans from each request's creation to its io:done, one histogram each,
    // for request-based disks; bio-based ones keep io:done's latency, which already runs from
    // block_bio_queue. The end's key is its own device and sector; a start's, the device its
    // sector lies on. (Keys must tell the devices apart: a span's end would also consume a
    // start of another device with the same key, whatever the end's where() says.)
    const queued: Aggregation[] = [];
    if (o.queued) {
      const starts = requestCreated();
      const endKey = (e: IoDoneEvent) => [e.buf.b_edev, e.buf.b_blkno];
      const pair = (from: Stream<TracepointEventOf<"block:block_getrq">>, range?: Range) => {
        const paired = span(from, done, {
          key: range
            ? [(e, p) => [p.part, e.args.sector], endKey]
            : [(e) => [e.args.dev, e.args.sector], endKey],
          params: range ? { part: range.part } : undefined,
          name: "queued",
        });
        queued.push(paired.hist((e) => e.latencyNs / 1000, {
          by,
          params,
          clear,
          stats: true,
          title: `queued_usecs ${queued.length}`,
        }));
      };
      const inside = (e: { args: { dev: number; sector: number } }, p: Params) =>
        e.args.dev === p.disk && e.args.sector >= (p.first as number) &&
        e.args.sector < (p.end as number);
      const outside = (e: { args: { dev: number; sector: number } }, p: Params) =>
        e.args.dev === p.disk &&
        (e.args.sector < (p.first as number) || e.args.sector >= (p.end as number));
      // The disks to pair by range: the one asked for, or every partitioned one.
      const ranged = disk !== undefined
        ? (requestBased(disk) ? ranges(disk, sysBlock(disk)!) : [])
        : [
          ...Deno.readDirSync("/sys/block"),
        ].flatMap(({ name }) => {
          const r = requestBased(name) ? ranges(name, sysBlock(name)!) : [];
          return r.length > 1 ? r : [];
        });
      for (const r of ranged) pair(starts.where(r.outside ? outside : inside, { ...r }), r);
      if (disk === undefined) {
        const whole = [...new Set(ranged.map((r) => r.disk))];
        pair(
          whole.length ? starts.where((e, p) => !p.whole.includes(e.args.dev), { whole }) : starts,
        );
      }
    }
    /** Each span's rows as one histogram (they hold different disks), lost updates summed. */
    const merged = (data: (AggregationData | undefined)[]): AggregationData | undefined =>
      data[0] && {
        ...data[0],
        name: "queued_usecs",
        rows: data.flatMap((d) => d?.rows ?? []),
        lost: data.reduce((n, d) => n + (d?.lost ?? 0), 0),
      };
    /** Per disk: with --queued, request-based disks from the spans, the others from io:done. */
    const groups = (issuedData?: AggregationData, queuedData?: AggregationData): Group[] => {
      if (!issuedData) return [];
      if (!queuedData) return issuedData.rows.flatMap((r) => group(issuedData, r, o.flags));
      const rq = new Map<string, boolean>();
      const isRq = (d: string) => rq.get(d) ?? rq.set(d, requestBased(d)).get(d)!;
      return [
        ...queuedData.rows.flatMap((r) => group(queuedData, r, o.flags)),
        ...issuedData.rows.filter((r) => !isRq(String(r.key[0])))
          .flatMap((r) => group({ ...issuedData, name: queuedData.name }, r, o.flags)),
      ];
    };
    // With --queued: completions of request-based disks timed from their issue, and paired.
    const pairing = { issued: 0, paired: 0 };
    const report = (issuedData?: AggregationData, queuedData?: AggregationData) => {
      const all = groups(issuedData, queuedData).sort((a, b) =>
        a.count - b.count || a.disk.localeCompare(b.disk)
      );
      for (const r of queuedData ? issuedData?.rows ?? [] : []) {
        if (r.value.kind === "hist" && requestBased(String(r.key[0]))) {
          pairing.issued += r.value.count;
        }
      }
      for (const r of queuedData?.rows ?? []) {
        if (r.value.kind === "hist") pairing.paired += r.value.count;
      }
      const lost = (issuedData?.lost ?? 0) + (queuedData?.lost ?? 0);
      if (o.records) {
        o.records.table("disks", all.map(({ hist: _, ...g }) => g), {
          unit: "us",
          measured: o.queued ? "queued" : "issue",
          lost,
        });
        return;
      }
      if (all.length === 0) console.log("biolatency: no block I/O completed");
      for (const g of all) {
        console.log(formatAggregation(g.hist));
        console.log(
          `count ${g.count}, mean ${micros(g.mean_us)}, p50 ${micros(g.p50_us)}, ` +
            `p99 ${micros(g.p99_us)}, max ${micros(g.max_us)}\n`,
        );
      }
      if (lost > 0) {
        console.log(`biolatency: ${lost} updates lost: more disks than the map holds`);
      }
    };
    const find = (data: AggregationData[], name: string) => data.find((d) => d.name === name);
    intervalReport = (data) => {
      if (!o.records) console.log(intervalHeader());
      report(find(data, issued.name), merged(queued.map((q) => find(data, q.name))));
    };
    return () => {
      report(issued.read(), merged(queued.map((q) => q.read())));
      if (o.queued && !o.records) {
        console.error(
          `biolatency: ${pairing.paired} of ${pairing.issued} completions on request-based ` +
            `disks paired with their request's creation (the others: created before tracing, ` +
            `front-merged, or flushes the kernel made)`,
        );
      }
    };
  },
  run: () => ({ onInterval: (data) => intervalReport?.(data) }),
});
