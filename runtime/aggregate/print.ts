/**
 * Aggregations as people read them: bpftrace's text layout (one line per key, or an ASCII
 * histogram per key) and a plain JSON form for machines.
 *
 * @module
 */
import { printable } from "../printable.ts";
import {
  type AggregationData,
  type AggregationKind,
  type AggregationRow,
  type AggregationValue,
  type Bucket,
  type KeyPart,
  linearBucket,
  type LinearRange,
  linearSlot,
  log2Bucket,
  log2Slot,
  stackFrames,
  type Stats,
} from "./data.ts";

/** Options of {@linkcode formatAggregation}. */
export interface FormatOptions {
  /** Print only the keys with the `top` largest values (still smallest first). */
  top?: number;
}

/**
 * A key part in JSON: numbers stay numbers, bigints become decimal strings, stacks become
 * their frames, leaf first.
 */
export type JsonKeyPart = number | string | string[];

/** A key in JSON: each part by its name ({@link AggregationData.keyNames}); {} without `by`. */
export type JsonKey = Record<string, JsonKeyPart>;

/** A histogram bucket in JSON: `null` stands for an open end (-Infinity or no upper bound). */
export interface BucketJson {
  /** The bucket's lowest value; null for -Infinity. */
  low: number | null;
  /** The first value past it; null for the last, open bucket. */
  high: number | null;
  /** Values that fell in it. */
  count: number;
}

/** One key in JSON: the key with its value minus the `kind` already given by the aggregation. */
export type AggregationRowJson =
  | { key: JsonKey; value: number }
  | { key: JsonKey; value: Stats }
  | { key: JsonKey; count: number; buckets: BucketJson[] };

/** An aggregation as a plain object that `JSON.stringify` renders without loss of keys. */
export interface AggregationJson {
  /** {@link AggregationData.name}. */
  name: string;
  /** The aggregating function. */
  kind: AggregationKind;
  /** Names of the key parts ({@link AggregationData.keyNames}). */
  keys: string[];
  /** Updates lost to a full map. */
  lost: number;
  /** Most keys the map holds. */
  capacity: number;
  /** For lhist: its buckets' range. */
  range?: LinearRange;
  /** One row per key. */
  rows: AggregationRowJson[];
}

type HistogramValue = Extract<AggregationValue, { kind: "hist" | "lhist" }>;

/** bpftrace's bar for the fullest bucket, and its minimum widths of the label and count columns. */
const BAR_WIDTH = 52;
const LABEL_WIDTH = 16;
const COUNT_WIDTH = 8;

/** Binary suffixes bpftrace puts on log2 bucket bounds: 1K is 2^10, 1E is 2^60. */
const SUFFIXES = ["", "K", "M", "G", "T", "P", "E"];

/**
 * Renders an aggregation the way bpftrace prints it at exit, without a trailing newline.
 *
 * Keys come smallest first so the largest ends next to the prompt: by value for count, sum, min,
 * max and avg, by average for stats (as bpftrace does), by total count for histograms; ties go by
 * key. Throws a RangeError for a `top` that is not a positive integer, and a TypeError for a row
 * whose kind is not the aggregation's or an lhist without its range.
 *
 * @example Count by command
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatAggregation } from "./print.ts";
 *
 * const text = formatAggregation({
 *   name: "opens",
 *   kind: "count",
 *   keyNames: ["comm"],
 *   rows: [
 *     { key: ["sshd"], value: { kind: "count", value: 12 } },
 *     { key: ["bash"], value: { kind: "count", value: 3 } },
 *   ],
 *   lost: 0,
 *   capacity: 1024,
 * });
 * equal(text, "@opens[bash]:  3\n@opens[sshd]: 12");
 * ```
 */
export function formatAggregation(data: AggregationData, options: FormatOptions = {}): string {
  const top = options.top ?? data.top;
  if (top !== undefined && !(Number.isInteger(top) && top > 0)) {
    throw new RangeError(`Option top '${top}' is not valid: give a positive integer`);
  }
  const rows = sortRows(data.rows).slice(top === undefined ? 0 : -top);
  const lines = rows.length === 0
    ? [`${mapName(data)}: (no data)`]
    : data.kind === "hist" || data.kind === "lhist"
    ? histogramLines(data, rows)
    : valueLines(data, rows);
  if (data.lost > 0) {
    lines.push(
      `${mapName(data)}: ${data.lost} updates lost: the map holds at most ${data.capacity} keys; ` +
        `raise its size (e.g. { size: ${biggerSize(data.capacity)} })`,
    );
  }
  return lines.join("\n");
}

/** The line above each interval's print: the time, `HH:MM:SS`, as bpftrace's `time()` prints it. */
export function intervalHeader(): string {
  return new Date().toTimeString().slice(0, 8);
}

/**
 * The label of a histogram bucket as bpftrace prints it: `(..., 0)`, `[0]`, `[1]`, `[2, 4)`,
 * `[1K, 2K)` for log2 buckets; `(..., min)`, `[low, high)`, `[max, ...)` for linear ones, whose
 * bounds are printed as they are.
 */
export function formatBucketLabel(bucket: Bucket, kind: "hist" | "lhist"): string {
  const bound = kind === "hist" ? withSuffix : String;
  if (bucket.high === undefined) return `[${bound(bucket.low)}, ...)`;
  if (bucket.low === -Infinity) return `(..., ${bound(bucket.high)})`;
  // Log2 slots 1 and 2 hold a single value each, and bpftrace names them by it.
  if (kind === "hist" && bucket.high - bucket.low === 1) return `[${bucket.low}]`;
  return `[${bound(bucket.low)}, ${bound(bucket.high)})`;
}

/**
 * The aggregation as a JSON-ready object, keys in the same order as the text (all of them),
 * each row's key an object of its parts by name. Bigint key parts become decimal strings,
 * whatever their size, so a key column keeps one JSON type; number key parts and all values
 * stay numbers; stacks are arrays of frames. Histogram rows list only non-empty buckets.
 */
export function aggregationJson(data: AggregationData): AggregationJson {
  return {
    name: data.name,
    kind: data.kind,
    keys: [...data.keyNames],
    lost: data.lost,
    capacity: data.capacity,
    ...(data.range ? { range: { ...data.range } } : {}),
    rows: sortRows(data.rows).map(({ key, value }): AggregationRowJson => {
      const jsonKey = Object.fromEntries(key.map((part, i) => [
        data.keyNames[i] ?? `key${i + 1}`,
        typeof part === "bigint" ? part.toString() : stackFrames(part) ?? part,
      ]));
      switch (value.kind) {
        case "hist":
        case "lhist":
          return {
            key: jsonKey,
            count: value.count,
            buckets: slotBuckets(value, data.range)
              .filter((b) => b.count > 0)
              .map((b) => ({
                low: b.low === -Infinity ? null : b.low,
                high: b.high ?? null,
                count: b.count,
              })),
          };
        case "stats":
          return { key: jsonKey, value: { ...value.value } };
        default:
          return { key: jsonKey, value: value.value };
      }
    }),
  };
}

/** One line per key: `@name[key]: value`, values right-aligned (stats left as written). */
function valueLines(data: AggregationData, rows: AggregationRow[]): string[] {
  const heads = rows.map((row) => `${keyLabel(data, row.key)}:`);
  const values = rows.map((row) => valueText(data, row));
  const headWidth = widest(heads);
  const valueWidth = data.kind === "stats" ? 0 : widest(values);
  return heads.map((head, i) => `${head.padEnd(headWidth)} ${values[i].padStart(valueWidth)}`);
}

function valueText(data: AggregationData, row: AggregationRow): string {
  const v = row.value;
  switch (v.kind) {
    case "hist":
    case "lhist":
      throw kindMismatch(data, row);
    case "stats": {
      const s = v.value;
      return `count ${s.count}, average ${s.avg}, total ${s.sum}, min ${s.min}, max ${s.max}`;
    }
    default:
      return String(v.value);
  }
}

/**
 * A header and a bar chart per key, blank lines between keys. The label and count columns are
 * bpftrace's 16 and 8 characters, widened for the whole aggregation when a label or count would
 * not fit, so that every bar starts in the same column.
 */
function histogramLines(data: AggregationData, rows: AggregationRow[]): string[] {
  const charts = rows.map((row) => {
    const v = row.value;
    if (v.kind !== "hist" && v.kind !== "lhist") throw kindMismatch(data, row);
    const buckets = slotBuckets(v, data.range);
    return {
      head: `${keyLabel(data, row.key)}:`,
      labels: buckets.map((b) => formatBucketLabel(b, v.kind)),
      counts: buckets.map((b) => b.count),
    };
  });
  const labelWidth = Math.max(LABEL_WIDTH, widest(charts.flatMap((c) => c.labels)) + 1);
  const countWidth = Math.max(COUNT_WIDTH, widest(charts.flatMap((c) => c.counts.map(String))));
  return charts.flatMap((chart, i) => {
    const most = chart.counts.reduce((m, c) => Math.max(m, c), 0);
    const bars = chart.counts.map((count, j) => {
      // Multiplying first keeps the floor exact where count / most * 52 would round below.
      const bar = "@".repeat(Math.floor((count * BAR_WIDTH) / most));
      return `${chart.labels[j].padEnd(labelWidth)}${String(count).padStart(countWidth)} ` +
        `|${bar.padEnd(BAR_WIDTH)}|`;
    });
    return [...(i > 0 ? [""] : []), chart.head, ...bars];
  });
}

/** The buckets from the first non-empty one to the last; none when all are empty. */
function slotBuckets(v: HistogramValue, range: LinearRange | undefined): Bucket[] {
  const slots = histogramSlots(v, range);
  const first = slots.findIndex((b) => b.count > 0);
  return first < 0 ? [] : slots.slice(first);
}

/**
 * A histogram's buckets, one per slot from the lowest (values below every bound) through the
 * last non-empty one (or `atLeast` of them): what a cumulative (Prometheus) histogram needs. Producers may hand over
 * every slot or only the non-empty ones, in any order: each is mapped back to its slot.
 */
export function histogramSlots(
  v: Extract<AggregationValue, { kind: "hist" | "lhist" }>,
  range: LinearRange | undefined,
  atLeast = 0,
): Bucket[] {
  const [slotOf, bucketAt] = slotScheme(v.kind, range);
  const counts = new Map<number, number>();
  for (const b of v.buckets) {
    const slot = slotOf(b);
    if (b.count > 0) counts.set(slot, (counts.get(slot) ?? 0) + b.count);
  }
  const length = Math.max(atLeast, counts.size === 0 ? 0 : Math.max(...counts.keys()) + 1);
  return Array.from({ length }, (_, slot) => bucketAt(slot, counts.get(slot) ?? 0));
}

/** How a histogram kind maps a bucket to its slot and a slot back to its bucket. */
function slotScheme(
  kind: HistogramValue["kind"],
  range: LinearRange | undefined,
): [(b: Bucket) => number, (slot: number, count: number) => Bucket] {
  if (kind === "hist") return [(b) => b.low < 0 ? 0 : log2Slot(b.low), log2Bucket];
  if (range === undefined) {
    throw new TypeError("An lhist aggregation needs its range to place its buckets");
  }
  return [(b) => linearSlot(b.low, range), (slot, count) => linearBucket(slot, count, range)];
}

/** Rows smallest first by the number bpftrace sorts on, then by key, so output is stable. */
function sortRows(rows: AggregationRow[]): AggregationRow[] {
  return rows.toSorted((a, b) =>
    compare(rank(a.value), rank(b.value)) || compareKeys(a.key, b.key)
  );
}

function rank(v: AggregationValue): number {
  switch (v.kind) {
    case "hist":
    case "lhist":
      return v.count;
    case "stats":
      return v.value.avg;
    default:
      return v.value;
  }
}

/** Part by part; numbers (of either type) before strings, shorter keys first. */
function compareKeys(a: KeyPart[], b: KeyPart[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compare(Number(typeof a[i] === "string"), Number(typeof b[i] === "string")) ||
      compare(a[i], b[i]);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compare<T extends KeyPart>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function mapName(data: AggregationData): string {
  return `@${data.name}`;
}

/**
 * `@name` for a keyless aggregation, else `@name[part, part]` with parts printed raw; a part of
 * several lines (a stack's frames) is printed as bpftrace prints stacks, a frame per line.
 */
function keyLabel(data: AggregationData, key: KeyPart[]): string {
  const parts = key.map((k) => {
    const frames = stackFrames(k);
    if (frames) return `\n${frames.map((f) => `        ${printable(f)}`).join("\n")}\n`;
    return typeof k === "string" ? printable(k) : String(k);
  });
  return key.length === 0 ? mapName(data) : `${mapName(data)}[${parts.join(", ")}]`;
}

/** A log2 bound with the largest binary suffix that divides it: 512, 1K, 2M, 16E. */
function withSuffix(n: number): string {
  let i = 0;
  while (n !== 0 && n % 1024 === 0 && i < SUFFIXES.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${SUFFIXES[i]}`;
}

/** The smallest power of two at least twice `capacity`: room for the keys that were lost. */
function biggerSize(capacity: number): number {
  let size = 1;
  while (size < 2 * capacity) size *= 2;
  return size;
}

function widest(texts: string[]): number {
  return texts.reduce((w, t) => Math.max(w, t.length), 0);
}

function kindMismatch(data: AggregationData, row: AggregationRow): TypeError {
  return new TypeError(
    `Key [${row.key.map(String).join(", ")}] of ${mapName(data)} holds a ${row.value.kind} ` +
      `value in a ${data.kind} aggregation`,
  );
}
