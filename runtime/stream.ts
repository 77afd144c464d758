/**
 * The public shape of tracing: a {@link Stream} of a probe's events, narrowed with `where`,
 * ending in a JavaScript handler (`on`) or an aggregation (`count`, `hist`...) that never
 * leaves the kernel; {@link span} joins two streams into one whose events carry the time
 * between them.
 *
 * @module
 */
import type { AggregationData, AggregationKind, MetricOptions } from "./aggregate/data.ts";
import { formatAggregation } from "./aggregate/print.ts";
import type {
  AggregationRequest,
  LambdaRef,
  SpanRequest,
  StreamSource,
} from "./compiler/requests.ts";
import type { Handler, Session } from "./session.ts";
import { checkFunction, checkSize, NotAFunctionError, SizeError } from "./arguments.ts";

/** Params a lambda receives as its second argument: constants inlined when compiled. */
export type Params = Record<string, unknown>;

/** A lambda compiled for the kernel: reads the event (and params), returns a value. */
export type KernelLambda<E, R> = (event: E, params: Params) => R;

/** Options of every aggregation. */
export interface AggregateOptions<E> {
  /**
   * Key: one value, an array of values (`(e) => [e.comm, e.args.fd]`), or values by name
   * (`(e) => ({ comm: e.comm, fd: e.args.fd })`). JSON output and metrics name each part so;
   * unnamed parts are named after their field (`comm`, `fd`), else `key`, `key2`, ...
   */
  by?: KernelLambda<E, unknown>;
  /** Name printed with the results (default: the function and its value). */
  title?: string;
  /** Most keys kept (default 10240, at most 2^20); updates for keys beyond are counted as lost. */
  size?: number;
  /** Values for the lambdas' second argument. */
  params?: Params;
  /** Empty the aggregation after each interval's print. */
  clear?: boolean;
  /** Print only the N keys with the largest values (1 to 2^20). */
  top?: number;
  /** How `run({ metrics })` exposes it: name, help, unit and scale, counter or gauge. */
  metric?: MetricOptions;
}

/** Options of a histogram. */
export interface HistogramOptions<E> extends AggregateOptions<E> {
  /**
   * Also keep the values' sum, min and max beside the buckets, exactly: what `summarize()`'s
   * mean, min and max need. Without it a histogram keeps only its buckets, as bpftrace's does
   * (its count is theirs), and costs less per event; a session serving `metrics` keeps them
   * for every histogram (a metric's `_sum`).
   */
  stats?: boolean;
}

/** Options of a linear histogram: buckets of `step` from `min` up to `max`. */
export interface LinearOptions<E> extends HistogramOptions<E> {
  /** The lowest bucket's start (a 32-bit integer); smaller values count below it. */
  min: number;
  /** Where the buckets end (a 32-bit integer); larger values count above it. */
  max: number;
  /** Each bucket's width, at most `max - min`, at most 1000 buckets. */
  step: number;
}

const DEFAULT_SIZE = 10240;
/** Most buckets of a linear histogram. */
const MAX_BUCKETS = 1000;

/** An aggregation of a session: read it as data, print it, or empty it. */
export class Aggregation {
  readonly #session: Session;
  readonly #request: AggregationRequest;

  /** @internal Made by a {@link Stream}'s aggregation methods. */
  constructor(session: Session, request: AggregationRequest) {
    this.#session = session;
    this.#request = request;
  }

  /** The name it prints with. */
  get name(): string {
    return this.#request.name;
  }

  /** Its data: live while the session runs, final after; undefined before it ran. */
  read(): AggregationData | undefined {
    return this.#session.read(this.#request);
  }

  /** Prints it as bpftrace does. */
  print(): void {
    const data = this.read();
    if (data) console.log(formatAggregation(data, { top: this.#request.top }));
  }

  /** Empties it (while the session runs). */
  clear(): void {
    this.#session.clear(this.#request);
  }
}

function body(fn: (...args: never[]) => unknown): string {
  return fn.toString().replace(/^\s*(?:\([^)]*\)|[\w$]+)\s*=>\s*/, "").replace(/\s+/g, " ");
}

/** A stream of events of one probe (or span) that passed its predicates. */
export class Stream<E> {
  readonly #session: () => Session;
  readonly #source: StreamSource;

  /** @internal Made by the providers' `on()` and by {@link span}. */
  constructor(session: () => Session, source: StreamSource) {
    this.#session = session;
    this.#source = source;
  }

  /** @internal Where the events come from. */
  get source(): StreamSource {
    return this.#source;
  }

  /** @internal The session its consumers join. */
  get session(): () => Session {
    return this.#session;
  }

  /**
   * Only the events for which `predicate` is true, decided in the kernel. Script values
   * reach the predicate as its second argument: `.where((e, p) => e.pid === p.pid, { pid })`.
   */
  where<P extends Params>(predicate: (event: E, params: P) => unknown, params?: P): Stream<E> {
    const ref: LambdaRef = { fn: checkFunction("where's predicate", predicate), params };
    return new Stream(this.#session, {
      ...this.#source,
      predicates: [...this.#source.predicates, ref],
    });
  }

  /**
   * Calls `handler` in JavaScript with each event; the kernel captures only the fields the
   * handler reads (all of them when its source does not tell).
   */
  on(handler: Handler<E>): void {
    checkFunction("on's handler", handler);
    this.#session().add({
      source: this.#source,
      kind: "stream",
      handler: handler as Handler<unknown>,
    });
  }

  /** Counts events, per key when `by` is given (`.count((e) => e.comm)`). */
  count(by?: KernelLambda<E, unknown>, options: Omit<AggregateOptions<E>, "by"> = {}): Aggregation {
    return this.#aggregate("count", undefined, { ...options, by });
  }

  /** Sums a value. */
  sum(value: KernelLambda<E, number | bigint>, options?: AggregateOptions<E>): Aggregation {
    return this.#aggregate("sum", value, options);
  }

  /** The smallest value. */
  min(value: KernelLambda<E, number | bigint>, options?: AggregateOptions<E>): Aggregation {
    return this.#aggregate("min", value, options);
  }

  /** The largest value. */
  max(value: KernelLambda<E, number | bigint>, options?: AggregateOptions<E>): Aggregation {
    return this.#aggregate("max", value, options);
  }

  /** The average value (truncated to an integer, as DTrace and bpftrace print it). */
  avg(value: KernelLambda<E, number | bigint>, options?: AggregateOptions<E>): Aggregation {
    return this.#aggregate("avg", value, options);
  }

  /** Count, average, total, min and max of a value. */
  stats(value: KernelLambda<E, number | bigint>, options?: AggregateOptions<E>): Aggregation {
    return this.#aggregate("stats", value, options);
  }

  /** A power-of-two histogram of a value. */
  hist(value: KernelLambda<E, number | bigint>, options?: HistogramOptions<E>): Aggregation {
    return this.#aggregate("hist", value, options);
  }

  /** A linear histogram of a value: `.lhist((e) => e.ret, { min: 0, max: 100, step: 10 })`. */
  lhist(value: KernelLambda<E, number | bigint>, options: LinearOptions<E>): Aggregation {
    const { min, max, step } = options;
    // The bounds are BPF immediates: 32-bit.
    const int32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
    checkSize("lhist min", min, int32);
    checkSize("lhist max", max, int32);
    checkSize("lhist step", step, { max: int32.max });
    if (max <= min) throw new SizeError(`lhist max ${max} is not valid: give max > min (${min})`);
    if (step > max - min) {
      throw new SizeError(
        `lhist step ${step} is not valid: give a step up to max - min (${max - min})`,
      );
    }
    if ((max - min) / step > MAX_BUCKETS) {
      throw new SizeError(
        `lhist with ${Math.ceil((max - min) / step)} buckets is too many: give min, max and ` +
          `step for at most ${MAX_BUCKETS} buckets`,
      );
    }
    return this.#aggregate("lhist", value, options, { min, max, step });
  }

  #aggregate(
    kind: AggregationKind,
    value: KernelLambda<E, unknown> | undefined,
    options: HistogramOptions<E> = {},
    range?: { min: number; max: number; step: number },
  ): Aggregation {
    if (kind !== "count") checkFunction(`${kind}'s value`, value);
    if (options.by !== undefined) checkFunction(`${kind}'s by`, options.by);
    const size = checkSize(`${kind} size`, options.size ?? DEFAULT_SIZE);
    if (options.top !== undefined) checkSize(`${kind} top`, options.top);
    const params = options.params;
    const request: AggregationRequest = {
      name: options.title ?? (value ? `${kind}(${body(value)})` : kind),
      kind,
      value: value && { fn: value, params },
      by: options.by && { fn: options.by, params },
      range,
      size,
      clear: options.clear,
      top: options.top,
      metric: options.metric,
      stats: options.stats,
    };
    const session = this.#session();
    session.add({ source: this.#source, kind: "aggregate", aggregation: request });
    return new Aggregation(session, request);
  }
}

/** An event of a span: the end event, with the time since its start and carried values. */
export type SpanEvent<B, C extends string = never> = Omit<B, "latencyNs" | "start"> & {
  /** Time from the start event to this one, measured in the kernel. */
  latencyNs: number;
  /** Values computed at the start event (the `carry` option). */
  start: Record<C, number>;
};

/** Options of {@link span}. */
export interface SpanOptions<A, B, C extends string> {
  /** What pairs a start with its end: one lambda for both, or one for each. */
  key: KernelLambda<A & B, unknown> | [KernelLambda<A, unknown>, KernelLambda<B, unknown>];
  /** Integers computed at the start and given to the end as `event.start.<name>`. */
  carry?: Record<C, KernelLambda<A, number | bigint>>;
  /** Most starts waiting for their end (default 10240, at most 2^20); more are counted as lost. */
  size?: number;
  /** Name for messages. */
  name?: string;
  /** Values for the lambdas' second argument. */
  params?: Params;
}

/**
 * Joins two streams, like DTrace's `self->ts`: each `start` event is kept in a kernel map by
 * its key until an `end` event with the same key arrives, which then carries `latencyNs`.
 * Ends without a start are not in the resulting stream.
 */
export function span<A, B, C extends string = never>(
  start: Stream<A>,
  end: Stream<B>,
  options: SpanOptions<A, B, C>,
): Stream<SpanEvent<B, C>> {
  if (!(start instanceof Stream) || !(end instanceof Stream)) {
    throw new TypeError(
      'span(start, end, options) takes two streams (e.g. syscall.on("read:entry")) and ' +
        "options with a key; name it with options.name",
    );
  }
  const [s, e] = [start.source, end.source];
  if (s.kind !== "probe" || e.kind !== "probe") {
    throw new TypeError(
      "span() joins two probe streams, not spans: pass syscall.on(...) or similar",
    );
  }
  const params = options.params;
  const keys = Array.isArray(options.key) ? options.key : [options.key, options.key];
  if (keys.length !== 2) {
    throw new NotAFunctionError(
      "span's key must be a function, or two: [(start) => ..., (end) => ...]",
    );
  }
  keys.forEach((k) => checkFunction("span's key", k));
  const carry: Record<string, LambdaRef> = {};
  for (const [name, fn] of Object.entries(options.carry ?? {})) {
    carry[name] = {
      fn: checkFunction(`span's carry.${name}`, fn as KernelLambda<A, unknown>),
      params,
    };
  }
  const request: SpanRequest = {
    name: options.name ?? `${s.request.name} -> ${e.request.name}`,
    start: s,
    end: e,
    key: [{ fn: keys[0], params }, { fn: keys[1], params }],
    carry,
    size: checkSize("span size", options.size ?? DEFAULT_SIZE),
  };
  return new Stream(start.session, { kind: "span", span: request, predicates: [] });
}
