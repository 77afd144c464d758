/**
 * Aggregations as Prometheus metric families, as ebpf_exporter maps BPF maps: `count` a
 * counter, `sum` a counter when declared monotonic else a gauge, `min`/`max`/`avg` gauges,
 * `stats` a family of each, `hist` a histogram with `le` on the log2 boundaries and `lhist`
 * one with linear `le`, both with `_sum` and `_count`. Labels are the key's named parts.
 *
 * @module
 */
import {
  type AggregationData,
  type AggregationRow,
  type Bucket,
  type KeyPart,
  stackFrames,
  type Stats,
} from "../aggregate/data.ts";
import { histogramSlots } from "../aggregate/print.ts";
import {
  escapeLabelValue,
  labelName,
  type MetricFamily,
  metricName,
  sampleLine,
} from "./exposition.ts";

/** A key part as a label value: stacks as their frames joined by `;`, as folded stacks are. */
function labelValue(part: KeyPart): string {
  return stackFrames(part)?.join(";") ?? String(part);
}

/**
 * The labels of a row, as `labelsText` writes them (its key's parts by name), by a
 * function made once per aggregation: names are made valid once, not once per series, and no
 * name and value pairs are made per series for `labelsText` (with them, the agent of
 * bench/metrics.ts peaked at 83 MB instead of 77).
 */
function labeler(data: AggregationData): (row: AggregationRow) => string {
  const parts = (data.rows[0]?.key ?? []).map((_, i) => {
    const name = data.keyNames[i] ?? `key${i + 1}`;
    return {
      open: `${i ? "," : ""}${labelName(name)}="`,
      value: data.metric?.labelValues?.[name] ?? labelValue,
    };
  });
  return (row) => {
    let text = "";
    for (let i = 0; i < parts.length; i++) {
      text += `${parts[i].open}${escapeLabelValue(parts[i].value(row.key[i]))}"`;
    }
    return text;
  };
}

/** The family name of an aggregation: prefix, name, unit, as Prometheus's conventions want. */
function baseName(data: AggregationData, prefix: string): string {
  const m = data.metric ?? {};
  const name = metricName(`${prefix}_${m.name ?? data.name}`);
  return m.unit ? `${name}_${metricName(m.unit)}` : name;
}

/**
 * The metric families of one aggregation. `le` bounds are the upper bounds of the buckets
 * (a log2 bucket [2^k, 2^(k+1)) is `le` 2^(k+1) times the scale), cumulative, up to the
 * highest bucket `seen` in any scrape of it so far (so a series, once there, stays) and
 * `+Inf`.
 */
export function aggregationFamilies(
  data: AggregationData,
  prefix: string,
  seen: { slots: number } = { slots: 0 },
): MetricFamily[] {
  const scale = data.metric?.scale ?? 1;
  const help = data.metric?.help ?? data.name;
  const base = baseName(data, prefix);
  const family = (name: string, type: MetricFamily["type"], lines: string[], what = help) => ({
    name,
    help: what,
    type,
    lines,
  });
  const rows = data.rows;
  const labelsOf = labeler(data);
  switch (data.kind) {
    case "count":
      return [family(`${base}_total`, "counter", scalar(data, labelsOf, `${base}_total`, 1))];
    case "sum": {
      const counter = data.metric?.monotonic === true;
      const name = counter ? `${base}_total` : base;
      return [family(name, counter ? "counter" : "gauge", scalar(data, labelsOf, name, scale))];
    }
    case "min":
    case "max":
    case "avg":
      return [family(base, "gauge", scalar(data, labelsOf, base, scale))];
    case "stats": {
      const stats = rows.flatMap((r) =>
        r.value.kind === "stats" ? [{ labels: labelsOf(r), stats: r.value.value }] : []
      );
      const part = (suffix: string, type: MetricFamily["type"], pick: (s: Stats) => number) =>
        family(
          `${base}_${suffix}`,
          type,
          stats.map((x) => sampleLine(`${base}_${suffix}`, x.labels, pick(x.stats))),
          `${help} (${suffix.replace(/_total$/, "")})`,
        );
      return [
        part("count_total", "counter", (s) => s.count),
        part("sum", "gauge", (s) => scaled(s.sum, scale)),
        part("min", "gauge", (s) => scaled(s.min, scale)),
        part("max", "gauge", (s) => scaled(s.max, scale)),
        part("avg", "gauge", (s) => scaled(s.avg, scale)),
      ];
    }
    case "hist":
    case "lhist": {
      const lines: string[] = [];
      const histograms = rows.flatMap((r) =>
        r.value.kind === "hist" || r.value.kind === "lhist" ? [{ row: r, value: r.value }] : []
      );
      for (const h of histograms) {
        seen.slots = Math.max(seen.slots, histogramSlots(h.value, data.range).length);
      }
      // Every row's buckets have the same bounds: their `le` texts are made once.
      const bounds: string[] = [];
      for (const { row, value } of histograms) {
        const labels = labelsOf(row);
        const open = labels ? `${base}_bucket{${labels},le="` : `${base}_bucket{le="`;
        let cumulative = 0;
        histogramSlots(value, data.range, seen.slots).forEach((b, slot) => {
          cumulative += b.count;
          if (b.high === undefined) return; // the open bucket is +Inf's
          bounds[slot] ??= le(b, scale);
          lines.push(`${open}${bounds[slot]}"} ${cumulative}`);
        });
        lines.push(
          `${open}+Inf"} ${value.count}`,
          sampleLine(`${base}_sum`, labels, scaled(value.stats?.sum ?? 0, scale)),
          sampleLine(`${base}_count`, labels, value.count),
        );
      }
      return [family(base, "histogram", lines)];
    }
  }
}

/** A bucket's `le`: its upper bound, scaled. */
function le(b: Bucket, scale: number): string {
  return String(scaled(b.high!, scale));
}

/**
 * `v * scale`, divided where the scale is a reciprocal (1e-6) so that 65536 us is 0.065536 s
 * and not 0.06553599999999999.
 */
function scaled(v: number, scale: number): number {
  const inverse = 1 / scale;
  return Number.isInteger(inverse) ? v / inverse : v * scale;
}

/** One sample line per row of a one-number aggregation. */
function scalar(
  data: AggregationData,
  labelsOf: (row: AggregationRow) => string,
  name: string,
  scale: number,
): string[] {
  const lines: string[] = [];
  for (const r of data.rows) {
    if ("value" in r.value && typeof r.value.value === "number") {
      lines.push(sampleLine(name, labelsOf(r), scaled(r.value.value, scale)));
    }
  }
  return lines;
}
