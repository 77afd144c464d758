import { deepStrictEqual as equal, throws } from "node:assert/strict";
import {
  type AggregationData,
  type AggregationRow,
  type Bucket,
  type KeyPart,
  linearBucket,
  type LinearRange,
  linearSlot,
  linearSlots,
  LOG2_SLOTS,
  log2Bucket,
  log2Slot,
} from "../../runtime/aggregate/data.ts";
import {
  aggregationJson,
  formatAggregation,
  formatBucketLabel,
} from "../../runtime/aggregate/print.ts";

/** An aggregation with no lost updates and room for 1024 keys unless `more` says otherwise. */
function agg(
  name: string,
  kind: AggregationData["kind"],
  rows: AggregationRow[],
  more: Partial<AggregationData> = {},
): AggregationData {
  return { name, kind, keyNames: ["comm"], rows, lost: 0, capacity: 1024, ...more };
}

function counts(pairs: [KeyPart[], number][]): AggregationRow[] {
  return pairs.map(([key, value]) => ({ key, value: { kind: "count", value } }));
}

/** A log2 histogram row holding `values`, with all 66 slots as the kernel map returns them. */
function log2Row(key: KeyPart[], values: (number | bigint)[]): AggregationRow {
  const slots = new Array<number>(LOG2_SLOTS).fill(0);
  for (const v of values) slots[log2Slot(v)]++;
  const buckets = slots.map((count, slot) => log2Bucket(slot, count));
  return { key, value: { kind: "hist", buckets, count: values.length } };
}

function linearRow(key: KeyPart[], values: number[], r: LinearRange): AggregationRow {
  const slots = new Array<number>(linearSlots(r)).fill(0);
  for (const v of values) slots[linearSlot(v, r)]++;
  const buckets = slots.map((count, slot) => linearBucket(slot, count, r));
  return { key, value: { kind: "lhist", buckets, count: values.length } };
}

function repeat(v: number, times: number): number[] {
  return new Array<number>(times).fill(v);
}

const syscalls = agg(
  "syscalls",
  "count",
  counts([[["bash", 12n], 3], [["sshd", 7n], 120], [["bash", 9n], 3], [["cron", 1n], 40]]),
  { keyNames: ["comm", "pid"] },
);

Deno.test("formatAggregation() prints counts smallest first, ties by key, values aligned", () => {
  equal(
    formatAggregation(syscalls),
    [
      "@syscalls[bash, 9]:    3",
      "@syscalls[bash, 12]:   3",
      "@syscalls[cron, 1]:   40",
      "@syscalls[sshd, 7]:  120",
    ].join("\n"),
  );
});

Deno.test("formatAggregation() keeps the top N largest, still smallest first", () => {
  equal(
    formatAggregation(syscalls, { top: 2 }),
    "@syscalls[cron, 1]:  40\n@syscalls[sshd, 7]: 120",
  );
  equal(formatAggregation(syscalls, { top: 10 }), formatAggregation(syscalls));
  throws(() => formatAggregation(syscalls, { top: 0 }), RangeError);
  throws(() => formatAggregation(syscalls, { top: 1.5 }), RangeError);
});

Deno.test("formatAggregation() prints keyless values, raw names and mixed key types", () => {
  equal(
    formatAggregation(agg("total", "sum", [{ key: [], value: { kind: "sum", value: 42 } }])),
    "@total: 42",
  );
  equal(
    formatAggregation(
      agg("read sizes", "max", [{ key: ["bash"], value: { kind: "max", value: 3 } }]),
    ),
    "@read sizes[bash]: 3",
  );
  equal(
    formatAggregation(agg("k", "count", counts([[["b"], 1], [["a"], 1], [[10], 1], [[2n], 1]]))),
    "@k[2]:  1\n@k[10]: 1\n@k[a]:  1\n@k[b]:  1",
  );
});

Deno.test("formatAggregation() prints stats sorted by average", () => {
  const stats = agg("lat", "stats", [
    {
      key: ["bash"],
      value: { kind: "stats", value: { count: 3, sum: 30, min: 1, max: 20, avg: 10 } },
    },
    {
      key: ["sshd"],
      value: { kind: "stats", value: { count: 1, sum: 5, min: 5, max: 5, avg: 5 } },
    },
  ]);
  equal(
    formatAggregation(stats),
    [
      "@lat[sshd]: count 1, average 5, total 5, min 5, max 5",
      "@lat[bash]: count 3, average 10, total 30, min 1, max 20",
    ].join("\n"),
  );
});

const readSizes = agg("read sizes", "hist", [
  log2Row(["bash"], [0, ...repeat(2, 3), 3, 3, ...repeat(5000, 52)]),
  log2Row(["sshd"], [-1, 1, 1, 1]),
]);

Deno.test("formatAggregation() draws log2 histograms trimmed, scaled, by total count", () => {
  equal(
    formatAggregation(readSizes),
    [
      "@read sizes[sshd]:",
      "(..., 0)               1 |@@@@@@@@@@@@@@@@@                                   |",
      "[0]                    0 |                                                    |",
      "[1]                    3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
      "",
      "@read sizes[bash]:",
      "[0]                    1 |@                                                   |",
      "[1]                    0 |                                                    |",
      "[2, 4)                 5 |@@@@@                                               |",
      "[4, 8)                 0 |                                                    |",
      "[8, 16)                0 |                                                    |",
      "[16, 32)               0 |                                                    |",
      "[32, 64)               0 |                                                    |",
      "[64, 128)              0 |                                                    |",
      "[128, 256)             0 |                                                    |",
      "[256, 512)             0 |                                                    |",
      "[512, 1K)              0 |                                                    |",
      "[1K, 2K)               0 |                                                    |",
      "[2K, 4K)               0 |                                                    |",
      "[4K, 8K)              52 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
    ].join("\n"),
  );
  equal(
    formatAggregation(readSizes, { top: 1 }),
    formatAggregation({ ...readSizes, rows: [readSizes.rows[0]] }),
  );
});

Deno.test("formatAggregation() gives the same histogram from only the non-empty buckets", () => {
  const sparse = readSizes.rows.map((row): AggregationRow =>
    row.value.kind === "hist"
      ? {
        key: row.key,
        value: { ...row.value, buckets: row.value.buckets.filter((b) => b.count > 0).reverse() },
      }
      : row
  );
  equal(formatAggregation({ ...readSizes, rows: sparse }), formatAggregation(readSizes));
});

Deno.test("formatAggregation() draws a linear histogram with open ends", () => {
  const range = { min: 0, max: 30, step: 10 };
  const lat = agg("lat", "lhist", [
    linearRow([], [-5, -5, 15, 15, 15, 15, ...repeat(100, 8)], range),
  ], {
    keyNames: [],
    range,
  });
  equal(
    formatAggregation(lat),
    [
      "@lat:",
      "(..., 0)               2 |@@@@@@@@@@@@@                                       |",
      "[0, 10)                0 |                                                    |",
      "[10, 20)               4 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |",
      "[20, 30)               0 |                                                    |",
      "[30, ...)              8 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
    ].join("\n"),
  );
  throws(() => formatAggregation({ ...lat, range: undefined }), TypeError);
});

Deno.test("formatAggregation() widens the label column so long labels keep bars aligned", () => {
  const range = { min: 0, max: 2_000_000_000, step: 1_000_000_000 };
  const ns = agg("ns", "lhist", [linearRow([], [1_500_000_000, 3_000_000_000], range)], {
    keyNames: [],
    range,
  });
  equal(
    formatAggregation(ns),
    [
      "@ns:",
      "[1000000000, 2000000000)        1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
      "[2000000000, ...)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
    ].join("\n"),
  );
});

Deno.test("formatAggregation() reports lost updates and empty aggregations", () => {
  equal(
    formatAggregation({ ...syscalls, lost: 7 }, { top: 1 }),
    "@syscalls[sshd, 7]: 120\n" +
      "@syscalls: 7 updates lost: the map holds at most 1024 keys; raise its size (e.g. { size: 2048 })",
  );
  equal(formatAggregation(agg("x", "count", [])), "@x: (no data)");
  equal(
    formatAggregation(agg("x", "hist", [], { lost: 3, capacity: 100 })),
    "@x: (no data)\n" +
      "@x: 3 updates lost: the map holds at most 100 keys; raise its size (e.g. { size: 256 })",
  );
});

Deno.test("formatAggregation() refuses a row whose kind is not the aggregation's", () => {
  throws(() => formatAggregation({ ...syscalls, kind: "hist" }), TypeError);
  throws(() => formatAggregation({ ...readSizes, kind: "count" }), TypeError);
});

Deno.test("formatBucketLabel() names log2 buckets with binary suffixes, linear ones as numbers", () => {
  const log2 = (slot: number) => formatBucketLabel(log2Bucket(slot, 0), "hist");
  equal([0, 1, 2, 3, 11, 12, 22, 42, 52, 62, 65].map(log2), [
    "(..., 0)",
    "[0]",
    "[1]",
    "[2, 4)",
    "[512, 1K)",
    "[1K, 2K)",
    "[1M, 2M)",
    "[1T, 2T)",
    "[1P, 2P)",
    "[1E, 2E)",
    "[8E, 16E)",
  ]);
  const r = { min: 0, max: 2048, step: 1024 };
  equal([0, 1, 2, 3].map((slot) => formatBucketLabel(linearBucket(slot, 0, r), "lhist")), [
    "(..., 0)",
    "[0, 1024)",
    "[1024, 2048)",
    "[2048, ...)",
  ]);
});

Deno.test("aggregationJson() survives JSON.stringify with bigint keys and open buckets", () => {
  const pids = agg("sizes", "hist", [
    log2Row([2n ** 64n - 1n], [-1, 0, 3, 3]),
    log2Row([123n], [8]),
  ], {
    keyNames: ["pid"],
  });
  equal(JSON.parse(JSON.stringify(aggregationJson(pids))), {
    name: "sizes",
    kind: "hist",
    keys: ["pid"],
    lost: 0,
    capacity: 1024,
    rows: [
      { key: { pid: "123" }, count: 1, buckets: [{ low: 8, high: 16, count: 1 }] },
      {
        key: { pid: "18446744073709551615" },
        count: 4,
        buckets: [
          { low: null, high: 0, count: 1 },
          { low: 0, high: 1, count: 1 },
          { low: 2, high: 4, count: 2 },
        ],
      },
    ],
  });

  const range = { min: 0, max: 10, step: 5 };
  const lat = agg("lat", "lhist", [linearRow([7], [3, 50], range)], { range });
  equal(JSON.parse(JSON.stringify(aggregationJson(lat))).rows, [
    {
      key: { comm: 7 },
      count: 2,
      buckets: [{ low: 0, high: 5, count: 1 }, { low: 10, high: null, count: 1 }],
    },
  ]);
  equal(JSON.parse(JSON.stringify(aggregationJson(lat))).range, range);
});

Deno.test("aggregationJson() gives scalar and stats rows their value", () => {
  equal(JSON.parse(JSON.stringify(aggregationJson(syscalls))).rows.slice(-1), [
    { key: { comm: "sshd", pid: "7" }, value: 120 },
  ]);
  const s = { count: 2, sum: 6, min: 1, max: 5, avg: 3 };
  const stats = agg("lat", "stats", [{ key: [], value: { kind: "stats", value: s } }], {
    keyNames: [],
  });
  equal(JSON.parse(JSON.stringify(aggregationJson(stats))), {
    name: "lat",
    kind: "stats",
    keys: [],
    lost: 0,
    capacity: 1024,
    rows: [{ key: {}, value: s }],
  });
});

Deno.test("log2Slot() puts negatives in 0, zero in 1 and [2^k, 2^(k+1)) in k + 2", () => {
  equal([-5, -1n, 0, 1, 2, 3, 4, 7, 8].map(log2Slot), [0, 0, 1, 2, 3, 3, 4, 4, 5]);
  equal(log2Slot(2 ** 53), 55);
  equal(log2Slot(2n ** 63n), 65);
  equal(log2Slot(2n ** 64n - 1n), LOG2_SLOTS - 1);
  equal(log2Bucket(0, 1), { low: -Infinity, high: 0, count: 1 });
  equal(log2Bucket(65, 1), { low: 2 ** 63, high: 2 ** 64, count: 1 });
});

Deno.test("linearSlot() and linearBucket() agree on the edges", () => {
  const r = { min: 0, max: 100, step: 10 };
  equal(linearSlots(r), 12);
  equal([-1, 0, 9, 10, 99, 100, 1000n].map((v) => linearSlot(v, r)), [0, 1, 1, 2, 10, 11, 11]);
  const bucket = (slot: number): Bucket => linearBucket(slot, 0, r);
  equal([0, 1, 10, 11].map(bucket), [
    { low: -Infinity, high: 0, count: 0 },
    { low: 0, high: 10, count: 0 },
    { low: 90, high: 100, count: 0 },
    { low: 100, high: undefined, count: 0 },
  ]);
  // A step that does not divide the range leaves a short last bucket below max.
  const uneven = { min: -10, max: 15, step: 10 };
  equal(linearSlots(uneven), 5);
  equal([-11, -10, 0, 14, 15].map((v) => linearSlot(v, uneven)), [0, 1, 2, 3, 4]);
  equal(linearBucket(3, 0, uneven), { low: 10, high: 15, count: 0 });
});
