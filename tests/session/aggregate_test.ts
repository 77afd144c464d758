import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { type AggregationData, type KeyPart, run, syscall } from "../../mod.ts";
import { linearSlot, log2Slot, type Stats } from "../../runtime/aggregate/data.ts";
import { summarize } from "../../runtime/aggregate/summary.ts";

/** Read sizes of the perl child (from /dev/zero, so every read returns what it asked). */
const SIZES = [1, 2, 3, 5, 8, 13, 100, 1000, 4096, 4097, 65536, 7, 7];
/** dd reads 10 blocks of 4096 on fd 0. */
const DD_READS = 10;
const WORKLOAD = [
  "sh",
  "-c",
  `perl -e 'sysread(STDIN, $b, $_) for (${SIZES.join(",")})' < /dev/zero; ` +
  `dd if=/dev/zero of=/dev/null bs=4096 count=${DD_READS} status=none`,
];

function rowsByKey(data: AggregationData | undefined): Map<string, unknown> {
  ok(data, "aggregation has data");
  return new Map(data.rows.map((r) => [r.key.join(","), r.value]));
}

function histCounts(data: AggregationData | undefined, key: KeyPart[] = []): number[] {
  const row = data?.rows.find((r) => r.key.join(",") === key.join(","));
  ok(row && (row.value.kind === "hist" || row.value.kind === "lhist"), "histogram row");
  return row.value.kind === "hist" || row.value.kind === "lhist"
    ? row.value.buckets.map((b) => b.count)
    : [];
}

Deno.test("in-kernel aggregates equal JavaScript over the same events and the known workload", async () => {
  const reads = syscall.on("read:return").where((e) => e.args.fd === 0 && e.ret > 0);
  const events: { comm: string; ret: number }[] = [];
  reads.on((e) => events.push({ comm: e.comm, ret: e.ret }));
  const count = reads.count((e) => e.comm);
  const sum = reads.sum((e) => e.ret, { by: (e) => e.comm });
  const min = reads.min((e) => e.ret, { by: (e) => e.comm });
  const max = reads.max((e) => e.ret, { by: (e) => e.comm });
  const avg = reads.avg((e) => e.ret, { by: (e) => e.comm });
  const stats = reads.stats((e) => e.ret);
  const hist = reads.hist((e) => e.ret);
  const range = { min: 0, max: 5000, step: 1000 };
  const lhist = reads.lhist((e) => e.ret, range);
  const both = reads.count((e) => [e.comm, e.ret]);
  // With stats, a histogram per comm (a hash) and one without a key (a hash: an array cannot
  // be cleared of a min or max).
  const histStats = reads.hist((e) => e.ret, { by: (e) => e.comm, stats: true });
  const lhistStats = reads.lhist((e) => e.ret, { ...range, stats: true });
  // Nothing passes: a keyless count and histogram (arrays) have no row, as a hash has none.
  const never = reads.where((e) => e.ret < 0);
  const [noCount, noHist] = [never.count(), never.hist((e) => e.ret)];

  const summary = await run({ command: WORKLOAD, printAggregations: false });
  equal(summary.commandExitCode, 0);
  equal(summary.dropped, 0);

  // Ground truth: what the workload did.
  const perl = SIZES;
  const dd = new Array(DD_READS).fill(4096);
  const truth = new Map([["perl", perl], ["dd", dd]]);
  // JavaScript saw exactly those reads.
  equal(events.filter((e) => e.comm === "perl").map((e) => e.ret), perl);
  equal(events.filter((e) => e.comm === "dd").map((e) => e.ret), dd);

  const of = (kind: string, v: number[]) => {
    const s = v.reduce((a, b) => a + b, 0);
    const stats = {
      count: v.length,
      sum: s,
      min: Math.min(...v),
      max: Math.max(...v),
      avg: Math.trunc(s / v.length),
    };
    return kind === "stats" ? { kind, value: stats } : {
      kind,
      value: kind === "count" ? v.length : stats[kind as "sum" | "min" | "max" | "avg"],
    };
  };
  for (
    const [agg, kind] of [[count, "count"], [sum, "sum"], [min, "min"], [max, "max"], [
      avg,
      "avg",
    ]] as const
  ) {
    const rows = rowsByKey(agg.read());
    equal(rows.size, 2, `${kind} has one row per comm`);
    for (const [comm, v] of truth) equal(rows.get(comm), of(kind, v), `${kind} of ${comm}`);
  }
  const all = [...perl, ...dd];
  equal(rowsByKey(stats.read()).get(""), of("stats", all));

  const log2 = new Array(66).fill(0);
  all.forEach((v) => log2[log2Slot(v)]++);
  equal(histCounts(hist.read()), log2);
  const linear = new Array(7).fill(0);
  all.forEach((v) => linear[linearSlot(v, range)]++);
  equal(histCounts(lhist.read()), linear);
  // Without the stats option a histogram keeps only its buckets; summarize() says what it needs.
  const [plain] = hist.read()!.rows;
  ok(plain.value.kind === "hist" && plain.value.stats === undefined);
  equal(plain.value.kind === "hist" && plain.value.count, all.length);
  throws(() => summarize(plain.value), /stats: true/);
  for (const [comm, v] of truth) {
    const row = histStats.read()!.rows.find((r) => r.key[0] === comm)!;
    const s = summarize(row.value)!;
    const { value: exact } = of("stats", v) as { value: Stats };
    equal([s.count, s.mean, s.min, s.max], [
      exact.count,
      exact.sum / exact.count,
      exact.min,
      exact.max,
    ]);
    equal(
      histCounts(histStats.read(), [comm]),
      histCounts(hist.read()).map((_, slot) => v.filter((x) => log2Slot(x) === slot).length),
    );
  }
  const [linearRow] = lhistStats.read()!.rows;
  equal(linearRow.value.kind === "lhist" && linearRow.value.stats, of("stats", all).value);
  equal(histCounts(lhistStats.read()), linear);
  equal([noCount.read()!.rows, noHist.read()!.rows], [[], []]);

  const pairs = rowsByKey(both.read());
  const expected = new Map<string, number>();
  for (const [comm, v] of truth) {
    for (const r of v) expected.set(`${comm},${r}`, (expected.get(`${comm},${r}`) ?? 0) + 1);
  }
  equal(pairs.size, expected.size);
  for (const [k, n] of expected) equal(pairs.get(k), { kind: "count", value: n }, k);
  // No update was lost, and the end-of-run data is what the summary carries.
  for (const a of summary.aggregations) equal(a.lost, 0, a.name);
  equal(summary.aggregations.length, 13);
});

Deno.test("a map too small for its keys reports exactly the updates it lost", async () => {
  const sizes = Array.from({ length: 20 }, (_, i) => i + 1);
  const capacity = 4;
  const bySize = syscall.on("read:return")
    .where((e) => e.args.fd === 0 && e.ret > 0 && e.comm === "perl")
    .count((e) => e.ret, { size: capacity, title: "reads by size" });
  const summary = await run({
    command: ["sh", "-c", `perl -e 'sysread(STDIN, $b, $_) for (${sizes.join(",")})' < /dev/zero`],
    printAggregations: false,
  });
  equal(summary.commandExitCode, 0);
  const data = bySize.read()!;
  equal(data.rows.length, capacity);
  equal(data.lost, sizes.length - capacity);
  // The keys that got in are the first ones seen, each counted once.
  equal(data.rows.map((r) => r.key[0]).sort((a, b) => Number(a) - Number(b)), [1, 2, 3, 4]);
});

Deno.test("interval snapshots of a cleared aggregation add up to every event, exactly", async () => {
  const bursts = [100, 200, 300];
  const calls = syscall.on("getppid:entry").where((e) => e.comm === "perl").count(undefined, {
    clear: true,
  });
  const kept = syscall.on("getppid:entry").where((e) => e.comm === "perl").count();
  // A keyless histogram is an array too: cleared by what it held, its snapshots add up as well.
  const clearedHist = syscall.on("getppid:entry").where((e) => e.comm === "perl")
    .hist((e) => e.pid, { clear: true });
  const histSnapshots: number[] = [];
  const snapshots: number[] = [];
  const value = (d: AggregationData | undefined) => {
    const v = d?.rows[0]?.value;
    return v?.kind === "count" ? v.value : 0;
  };
  const histTotal = (d: AggregationData | undefined) => {
    const v = d?.rows[0]?.value;
    return v?.kind === "hist" ? v.count : 0;
  };
  // Bursts 400 ms apart, snapshots every 150 ms: each burst lands in a different interval.
  const script = bursts.map((n) => `getppid() for 1..${n}; select(undef, undef, undef, 0.4);`)
    .join(" ");
  const summary = await run({
    command: ["perl", "-e", script],
    interval: 150,
    onInterval: (data) => {
      snapshots.push(value(data[0]));
      histSnapshots.push(histTotal(data[2]));
    },
    printAggregations: false,
  });
  equal(summary.commandExitCode, 0);
  const total = bursts.reduce((a, b) => a + b, 0);
  const cleared = snapshots.reduce((a, b) => a + b, 0) + value(calls.read());
  equal(cleared, total);
  equal(histSnapshots.reduce((a, b) => a + b, 0) + histTotal(clearedHist.read()), total);
  ok(histSnapshots.filter((n) => n > 0).length > 1, `cleared between bursts: ${histSnapshots}`);
  equal(value(kept.read()), total);
  // No snapshot mixes two bursts (400 ms apart): every burst's end is a snapshot boundary. A
  // burst may straddle two snapshots on a slow machine (the emulated 6.1 VM under load).
  const boundaries = new Set(
    snapshots.filter((n) => n > 0).map((_, i, a) => a.slice(0, i + 1).reduce((x, y) => x + y, 0)),
  );
  for (let end = 0, i = 0; i < bursts.length; i++) {
    end += bursts[i];
    ok(boundaries.has(end), `burst ${i + 1} ends inside a snapshot: ${snapshots}`);
  }
});
