/**
 * The live view of a running session's maps: aggregations read (and emptied) as snapshots,
 * counters summed over the CPUs, span summaries, and the printing of aggregations at an
 * interval and at the end.
 *
 * @module
 */
import { BpfMap } from "../bpf/map.ts";
import { type AggregationData, type KeyPart, stackKey } from "./aggregate/data.ts";
import { formatAggregation, intervalHeader } from "./aggregate/print.ts";
import { AggregationReader } from "./codegen/aggregation.ts";
import { type Plan, type PlannedAggregation, SessionMaps } from "./compiler/plan.ts";
import type { AggregationRequest } from "./compiler/requests.ts";
import type { RunOptions } from "./run_options.ts";
import type { SpanSummary } from "./run_summary.ts";

/** The live view of a running session's aggregation maps and counters. */
export class Aggregations {
  readonly #plan: Plan;
  readonly #maps: ReadonlyMap<string, BpfMap>;
  readonly #readers: Map<PlannedAggregation, AggregationReader>;

  constructor(p: Plan, maps: ReadonlyMap<string, BpfMap>) {
    this.#plan = p;
    this.#maps = maps;
    this.#readers = new Map(
      p.aggregations.map((a) => [a, new AggregationReader(maps.get(a.plan.map)!, a.plan)]),
    );
  }

  #find(a: AggregationRequest): PlannedAggregation | undefined {
    return this.#plan.aggregations.find((x) => x.request === a);
  }

  /** A per-CPU counter summed over the CPUs. */
  counter(index: number): number {
    const value = this.#maps.get(SessionMaps.counters)!.lookup(
      new Uint8Array(new Uint32Array([index]).buffer),
    );
    return value ? Number(BpfMap.sumPerCpu(value, 8)) : 0;
  }

  /** A snapshot of an aggregation; with `clear`, it is emptied as it is read. */
  read(a: AggregationRequest, clear = false): AggregationData | undefined {
    const planned = this.#find(a);
    if (!planned) return undefined;
    return {
      name: a.name,
      kind: a.kind,
      keyNames: planned.keyNames,
      rows: this.#readers.get(planned)!.read(clear).map((r) => ({
        ...r,
        key: r.key.map((k, i) => {
          const t = planned.keyTransforms[i];
          if (!t) return k;
          const named = t(k);
          // A list is a stack's frames.
          return Array.isArray(named) ? stackKey(named) : named as KeyPart;
        }),
      })),
      lost: this.counter(planned.plan.lostCounter),
      capacity: a.size,
      range: a.range,
      top: a.top,
      metric: a.metric,
    };
  }

  /** Hands the keys seen so far to the fields that keep something of them (see `retain`). */
  retain(): void {
    for (const planned of this.#plan.aggregations) {
      if (!planned.keyRetains.some((r) => r)) continue;
      const rows = this.#readers.get(planned)!.read();
      for (const row of rows) row.key.forEach((k, i) => planned.keyRetains[i]?.(k));
    }
  }

  clear(a: AggregationRequest): void {
    this.read(a, true);
  }

  /** Prints (or hands over) every aggregation, emptying those asked to be cleared. */
  interval(options: RunOptions): void {
    const data = this.#plan.aggregations.map((a) => this.read(a.request, a.request.clear)!);
    if (options.onInterval) options.onInterval(data);
    else {
      console.log(intervalHeader());
      this.print(data);
    }
  }

  /** Prints snapshots of this session's aggregations, as each asked (top N). */
  print(data: AggregationData[]): void {
    data.forEach((d, i) => {
      console.log(formatAggregation(d, { top: this.#plan.aggregations[i].request.top }) + "\n");
    });
  }

  spans(): SpanSummary[] {
    return this.#plan.spans.map(({ name, plan }) => {
      const started = this.counter(plan.counters.started);
      const matched = this.counter(plan.counters.matched);
      const open = [...this.#maps.get(plan.map)!.keys()].length;
      return {
        name,
        started,
        matched,
        unmatched: this.counter(plan.counters.unmatched),
        open,
        lost: Math.max(0, started - matched - open) + this.counter(plan.counters.lost),
      };
    });
  }
}
