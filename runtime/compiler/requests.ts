/**
 * What a script asks of a session, before anything is compiled: streams of probe events with
 * their predicates, handlers, aggregations and spans, with the lambdas as the functions the
 * script wrote.
 *
 * @module
 */
import type { AggregationKind, LinearRange, MetricOptions } from "../aggregate/data.ts";
import type { ProbeRequest } from "../providers/provider.ts";

// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => unknown;

/** A lambda and the params object its second argument receives. */
export interface LambdaRef {
  fn: AnyFunction;
  params?: Record<string, unknown>;
}

/** Where a stream's events come from, and the predicates they passed. */
export type StreamSource =
  | { kind: "probe"; request: ProbeRequest; predicates: LambdaRef[] }
  | { kind: "span"; span: SpanRequest; predicates: LambdaRef[] };

/** A span from the events of one stream to those of another. */
export interface SpanRequest {
  name: string;
  start: StreamSource & { kind: "probe" };
  end: StreamSource & { kind: "probe" };
  /** Key of the start and of the end events (one lambda for both, or one each). */
  key: [LambdaRef, LambdaRef];
  carry: Record<string, LambdaRef>;
  /** Most starts kept waiting for their end. */
  size: number;
}

/** An aggregation the user asked for. */
export interface AggregationRequest {
  name: string;
  kind: AggregationKind;
  value?: LambdaRef;
  by?: LambdaRef;
  range?: LinearRange;
  size: number;
  /** Empty it after each interval's print. */
  clear?: boolean;
  /** Print only the keys with the largest values. */
  top?: number;
  /** How it is exposed as a metric. */
  metric?: MetricOptions;
  /** A histogram keeps the values' sum, min and max too. */
  stats?: boolean;
}

/** What one consumer asks for. */
export type ConsumerRequest =
  | { source: StreamSource; kind: "stream"; handler: (event: unknown) => void }
  | { source: StreamSource; kind: "aggregate"; aggregation: AggregationRequest };
