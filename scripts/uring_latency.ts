/**
 * uring_latency: the latency of each io_uring request, from its submission
 * (`io_uring:io_uring_submit_req`) until the kernel posts its completion
 * (`io_uring:io_uring_complete`), as log2 histograms in microseconds per opcode, with count,
 * mean, p50, p99 and max. Requests are timed and counted in the kernel; only the histograms
 * reach JavaScript. The time does not include how long the application takes to reap the
 * completion from the ring.
 *
 *   tools/run scripts/uring_latency.ts --demo             fio with io_uring on a temporary file
 *   tools/run scripts/uring_latency.ts -p 1234 -i 1s      one process, a histogram each second
 *   tools/run scripts/uring_latency.ts -c "fio job.fio" --json
 *
 * JSON (`--json`, `--format ndjson`): records of the `table` type named `opcodes` (with -i one
 * per interval, then one of the rest), a row per opcode, `{ opcode, op, count, mean_us, p50_us,
 * p99_us, max_us, buckets: [{ low, high, count }] }`, most requests first; summary `{ requests,
 * lost }`, `lost` the requests of opcodes the map had no room for.
 */
import {
  type AggregationData,
  type AggregationRow,
  aio,
  formatAggregation,
  intervalHeader,
  type RecordWriter,
  uringOpName,
} from "../mod.ts";
import { recipe, summarize } from "../recipe.ts";

const TITLE = "io_uring usecs";

/**
 * The demo: 2048 random 4 KiB direct reads at depth 8 with fio's io_uring engine, on a file the
 * shell removes when fio ends, and this process at exit (if the session ended first, the shell
 * was killed before its trap could run).
 */
const DEMO_FILE = `/var/tmp/uring_latency-${Deno.pid}.dat`;
const DEMO = [
  `f=${DEMO_FILE}`,
  `trap 'rm -f "$f"' EXIT`,
  `trap 'exit 130' INT TERM`,
  `fio --name=uring_latency --filename="$f" --size=16m --rw=randread --bs=4k --iodepth=8 ` +
  `--ioengine=io_uring --direct=1 --number_ios=2048 --output-format=terse > /dev/null`,
].join("; ");
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(DEMO_FILE);
  } catch {
    // Not created (not the demo), or already removed by the shell.
  }
});

/** One opcode's requests (a row of the `opcodes` table in JSON); times in microseconds. */
interface Group {
  opcode: number;
  op: string;
  count: number;
  mean_us: number;
  p50_us: number | null;
  p99_us: number | null;
  max_us: number;
  buckets: { low: number | null; high: number | null; count: number }[];
}

function groups(data: AggregationData | undefined): [Group, AggregationRow][] {
  return (data?.rows ?? []).flatMap((row): [Group, AggregationRow][] => {
    const v = row.value;
    if (v.kind !== "hist" || !v.stats || v.stats.count === 0) return [];
    const opcode = Number(row.key[0]);
    const s = summarize(v)!;
    return [[{
      opcode,
      op: uringOpName(opcode),
      count: s.count,
      mean_us: s.mean,
      p50_us: s.p50 ?? null,
      p99_us: s.p99 ?? null,
      max_us: s.max,
      buckets: s.buckets,
    }, row]];
  }).sort(([a], [b]) => b.count - a.count || a.opcode - b.opcode);
}

const us = (x: number | null) =>
  x === null ? "?" : x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(1)} us`;

function report(
  records: RecordWriter | undefined,
  interval: boolean,
  data: AggregationData | undefined,
  final: boolean,
): void {
  const all = groups(data);
  const requests = all.reduce((n, [g]) => n + g.count, 0);
  const lost = data?.lost ?? 0;
  if (lost > 0) console.error(`uring_latency: ${lost} requests of unlisted opcodes not counted`);
  if (records) {
    records.table("opcodes", all.map(([g]) => ({ ...g })), { requests, lost });
    return;
  }
  if (interval) console.log(intervalHeader());
  if (all.length === 0) {
    console.log(`uring_latency: no io_uring request completed${final ? "" : " in this interval"}`);
  }
  for (const [g, row] of all) {
    console.log(formatAggregation({
      ...data!,
      name: `${TITLE}, ${g.op}`,
      keyNames: [],
      rows: [{ key: [], value: row.value }],
      lost: 0,
    }));
    console.log(
      `count ${g.count}, mean ${us(g.mean_us)}, p50 ${us(g.p50_us)}, p99 ${us(g.p99_us)}, ` +
        `max ${us(g.max_us)}\n`,
    );
  }
  if (final && all.length) console.error(`uring_latency: ${requests} io_uring requests timed`);
}

await recipe({
  name: "uring_latency",
  description: "Latency of io_uring requests per opcode, from submission to the kernel's " +
    "completion, as log2 histograms in microseconds with count, mean, p50, p99 and max.",
  examples: [
    "uring_latency --demo                   fio with io_uring (2048 random 4k reads), traced",
    "uring_latency -c 'fio job.fio' --json  one command and its children",
    "uring_latency -a -i 1s                 every process, each second",
  ],
  demo: DEMO,
  setup(o) {
    const interval = o.interval !== undefined;
    const hist = aio.on("uring").hist((e) => e.latencyNs / 1000, {
      by: (e) => e.opcode,
      title: TITLE,
      clear: interval,
      stats: true,
    });
    return () => report(o.records, interval, hist.read(), true);
  },
  run: (o) => ({
    // Each interval's histograms arrive here, already emptied in the kernel (clear).
    onInterval: (aggregations) =>
      report(o.records, true, aggregations.find((a) => a.name === TITLE), false),
  }),
});
