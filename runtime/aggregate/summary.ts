/**
 * What latency recipes print under each histogram (count, mean, p50, p99, min, max) and put
 * in their JSON (the same, with the non-empty buckets), from a histogram's value.
 *
 * @module
 */
import { type AggregationValue, quantile } from "./data.ts";

/** A histogram summed up. */
export interface HistogramSummary {
  /** Values counted. */
  count: number;
  /** Their average. */
  mean: number;
  /** The median, interpolated within its bucket ({@link quantile}). */
  p50: number | undefined;
  /** The 99th percentile, interpolated within its bucket. */
  p99: number | undefined;
  /** The smallest value, exact. */
  min: number;
  /** The largest value, exact. */
  max: number;
  /** The non-empty buckets; open ends as null. */
  buckets: { low: number | null; high: number | null; count: number }[];
}

/**
 * The summary of a histogram value that counted something; undefined otherwise. Its mean, min
 * and max are exact: they need a histogram that keeps its stats (the `stats` option).
 */
export function summarize(v: AggregationValue): HistogramSummary | undefined {
  if ((v.kind !== "hist" && v.kind !== "lhist") || v.count === 0) return undefined;
  const s = v.stats;
  if (!s) {
    throw new TypeError("summarize() needs a histogram that keeps its stats: give it stats: true");
  }
  return {
    count: s.count,
    mean: s.sum / s.count,
    p50: quantile(v.buckets, 0.5, s),
    p99: quantile(v.buckets, 0.99, s),
    min: s.min,
    max: s.max,
    buckets: v.buckets.filter((b) => b.count > 0).map((b) => ({
      low: Number.isFinite(b.low) ? b.low : null,
      high: b.high ?? null,
      count: b.count,
    })),
  };
}

/**
 * Microseconds for people: "12.3 us", "4.56 ms", "1.20 s"; "?" when unknown.
 *
 * @example Units
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { micros } from "./summary.ts";
 * equal(micros(12.34), "12.3 us");
 * equal(micros(4560), "4.56 ms");
 * equal(micros(undefined), "?");
 * ```
 */
export function micros(x: number | undefined): string {
  if (x === undefined) return "?";
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} s`;
  if (x >= 1000) return `${(x / 1000).toFixed(2)} ms`;
  return `${x.toFixed(1)} us`;
}

/** The line printed under a histogram in microseconds. */
export function summaryLine(s: HistogramSummary): string {
  return `count ${s.count}, mean ${micros(s.mean)}, p50 ${micros(s.p50)}, ` +
    `p99 ${micros(s.p99)}, max ${micros(s.max)}`;
}
