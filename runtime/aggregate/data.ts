/**
 * Aggregations as data: what the kernel's per-CPU maps hold once merged, and the bucket
 * arithmetic of log2 and linear histograms that the kernel code and the printers share.
 *
 * @module
 */

/** The aggregating functions, as in DTrace and bpftrace. */
export type AggregationKind = "count" | "sum" | "min" | "max" | "avg" | "stats" | "hist" | "lhist";

/** One part of an aggregation key: an integer or a string. */
export type KeyPart = number | bigint | string;

/**
 * A stack as a key part: NUL, then its frames (leaf first) separated by NUL. Kernel strings
 * and symbol names end at a NUL, so no other key holds one.
 */
export function stackKey(frames: readonly string[]): string {
  return `\0${frames.join("\0")}`;
}

/** The frames of a key part made by {@link stackKey}; undefined for any other. */
export function stackFrames(part: KeyPart): string[] | undefined {
  if (typeof part !== "string" || !part.startsWith("\0")) return undefined;
  return part.length === 1 ? [] : part.slice(1).split("\0");
}

/** count, sum, min, max, avg and stats all keep these; each kind reports its own. */
export interface Stats {
  /** Values counted. */
  count: number;
  /** Their sum. */
  sum: number;
  /** The smallest. */
  min: number;
  /** The largest. */
  max: number;
  /** `sum / count` truncated toward zero, as DTrace and bpftrace print it; 0 when empty. */
  avg: number;
}

/** A histogram bucket: values in `[low, high)`; `high` undefined for the last, open bucket. */
export interface Bucket {
  /** Its lowest value; -Infinity for the bucket of everything below the first bound. */
  low: number;
  /** The first value past the bucket; undefined for the last, open bucket. */
  high: number | undefined;
  /** Values that fell in the bucket. */
  count: number;
}

/** The merged value of one key. */
export type AggregationValue =
  | { kind: "count" | "sum" | "min" | "max" | "avg"; value: number }
  | { kind: "stats"; value: Stats }
  /** Histograms: the buckets, and the stats of the values counted. */
  | { kind: "hist" | "lhist"; buckets: Bucket[]; count: number; stats?: Stats };

/** One key of an aggregation with its value. */
export interface AggregationRow {
  /** The key's parts, in the order `by` gives them ([] without `by`). */
  key: KeyPart[];
  /** The value merged over CPUs. */
  value: AggregationValue;
}

/** Parameters of a linear histogram: buckets of `step` from `min` up to `max`. */
export interface LinearRange {
  /** The lowest bucket's start. */
  min: number;
  /** The end of the last bucket; values from here go to an open bucket. */
  max: number;
  /** Each bucket's width. */
  step: number;
}

/** How an aggregation is exposed as a Prometheus metric (the aggregation's `metric` option). */
export interface MetricOptions {
  /** The metric's name, before its unit and `_total` (default: from the title). */
  name?: string;
  /** Its help line (default: the title). */
  help?: string;
  /** The unit of the exposed values, appended to the name: "seconds", "bytes". */
  unit?: string;
  /** Multiplies values and bucket bounds when exposed: 1e-6 exposes microseconds as seconds. */
  scale?: number;
  /** A `sum` that never decreases (bytes, time): a counter rather than a gauge. */
  monotonic?: boolean;
  /** Label values by key part name, for parts better shown named: `{ id: syscallName }`. */
  labelValues?: Record<string, (part: KeyPart) => string>;
}

/** A snapshot of one aggregation. */
export interface AggregationData {
  /** Name shown in output, e.g. "read sizes" (bpftrace prints `@name`). */
  name: string;
  /** The aggregating function. */
  kind: AggregationKind;
  /** Names of the key parts (the source of each key lambda), for headers and JSON. */
  keyNames: string[];
  /** One row per key. */
  rows: AggregationRow[];
  /** Updates the kernel could not make because the map was full (keys not counted). */
  lost: number;
  /** Most keys the map holds. */
  capacity: number;
  /** For lhist. */
  range?: LinearRange;
  /** How many keys printing shows, the largest (the aggregation's `top` option). */
  top?: number;
  /** How it is exposed as a metric. */
  metric?: MetricOptions;
}

/**
 * Log2 histogram slots: 0 for negative values, 1 for 0, and `2 + floor(log2 v)` for v >= 1,
 * so slot i >= 2 holds [2^(i-2), 2^(i-1)). 66 slots cover every 64-bit value.
 */
export const LOG2_SLOTS = 66;

/** The log2 slot of a value (the kernel computes the same). */
export function log2Slot(v: number | bigint): number {
  const x = BigInt(v);
  if (x < 0n) return 0;
  if (x === 0n) return 1;
  return 2 + x.toString(2).length - 1;
}

/** The values a log2 slot holds, as a bucket with `count`. */
export function log2Bucket(slot: number, count: number): Bucket {
  if (slot === 0) return { low: -Infinity, high: 0, count };
  if (slot === 1) return { low: 0, high: 1, count };
  return { low: 2 ** (slot - 2), high: 2 ** (slot - 1), count };
}

/** Number of slots of a linear histogram: below `min`, one per step, and `max` and above. */
export function linearSlots(r: LinearRange): number {
  return Math.ceil((r.max - r.min) / r.step) + 2;
}

/** The linear slot of a value (the kernel computes the same). */
export function linearSlot(v: number | bigint, r: LinearRange): number {
  const x = Number(v);
  if (x < r.min) return 0;
  if (x >= r.max) return linearSlots(r) - 1;
  return 1 + Math.floor((x - r.min) / r.step);
}

/** The values a linear slot holds. */
export function linearBucket(slot: number, count: number, r: LinearRange): Bucket {
  const last = linearSlots(r) - 1;
  if (slot === 0) return { low: -Infinity, high: r.min, count };
  if (slot === last) return { low: r.max, high: undefined, count };
  const low = r.min + (slot - 1) * r.step;
  return { low, high: Math.min(low + r.step, r.max), count };
}

/**
 * The `q` quantile (0..1) of a histogram, interpolated linearly inside its bucket: exact to
 * the bucket, an estimate within it, and kept within the values' `bounds` (their exact min and
 * max, which a histogram's stats give) when known. Undefined when the histogram is empty.
 */
export function quantile(
  buckets: readonly Bucket[],
  q: number,
  bounds?: { min: number; max: number },
): number | undefined {
  const total = buckets.reduce((n, b) => n + b.count, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (const b of buckets) {
    if (b.count === 0) continue;
    if (seen + b.count >= rank) {
      const low = Number.isFinite(b.low) ? b.low : 0;
      const high = b.high ?? low * 2;
      const x = low + (high - low) * Math.max(0, rank - seen) / b.count;
      return bounds ? Math.min(bounds.max, Math.max(bounds.min, x)) : x;
    }
    seen += b.count;
  }
  return undefined;
}
