/**
 * The metrics endpoint of a session: `GET /metrics` reads the kernel's aggregation maps and
 * counters when Prometheus scrapes, and answers in the text exposition format; nothing is
 * done per event for it. Besides the aggregations, the session's own health: events
 * delivered per probe, events dropped, updates lost to full maps (with each map's keys and
 * capacity, so a fleet sees a node whose cardinality outgrew it), spans unmatched and lost,
 * and every loss counter the providers keep.
 *
 * @module
 */
import type { AggregationData } from "../aggregate/data.ts";
import type { SpanSummary } from "../run_summary.ts";
import type { MetricsAddress } from "./address.ts";
import { exposition, labelsText, type MetricFamily, sampleLine } from "./exposition.ts";
import { aggregationFamilies } from "./families.ts";

/** The prefix of the session's own metrics and of aggregations' default names. */
export const METRICS_PREFIX = "tsprobe";

/** What a scrape reads from the running session. */
export interface MetricsSource {
  /** Every aggregation, as the kernel holds it now. */
  aggregations(): AggregationData[];
  /** Events delivered to handlers so far, per probe. */
  events(): Record<string, number>;
  /** Events the ring buffer had no room for. */
  dropped(): number;
  /** The counters of the providers, by name, and which of them count lost data. */
  counters(): { values: Record<string, number>; losses: readonly string[] };
  /** The spans' counts. */
  spans(): SpanSummary[];
}

/** V8's `gc` extension (undefined until {@link exposeGarbageCollector} finds it). */
let gc: ((options?: object) => void) | undefined;

/**
 * Finds V8's `gc`: a global where Deno runs with `--expose-gc` (tools/bootstrap.sh sets it), else
 * exposed at run time through Node's v8 and vm modules, which cost an agent 2 MB resident;
 * without either, nothing.
 */
async function exposeGarbageCollector(): Promise<void> {
  gc = (globalThis as { gc?: typeof gc }).gc;
  if (gc) return;
  try {
    const [{ default: v8 }, { default: vm }] = await Promise.all([
      import("node:v8"),
      import("node:vm"),
    ]);
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc");
  } catch {
    // Not there: V8 collects on its own schedule, in more memory.
  }
}

/**
 * A full collection that also gives memory back: a plain one keeps the young generation at
 * the size a scrape grew it to, 15 MB more resident (an older V8 ignores the options).
 */
function collectGarbage(): void {
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
}

/** The endpoint; {@link close} it when the session ends. */
export class MetricsServer {
  /** Where it serves, `http://HOST:PORT/metrics`. */
  readonly url: string;
  readonly #server: Deno.HttpServer;
  readonly #abort = new AbortController();
  readonly #source: MetricsSource;
  /** Per aggregation, the highest histogram slot seen, so that a bucket series stays. */
  readonly #slots = new Map<string, { slots: number }>();
  /** Per aggregation, the lost updates already said on stderr. */
  readonly #said = new Map<string, number>();

  private constructor(address: MetricsAddress, source: MetricsSource) {
    this.#source = source;
    this.#server = Deno.serve({
      hostname: address.hostname,
      port: address.port,
      signal: this.#abort.signal,
      onListen: () => {},
    }, (request) => this.#handle(request));
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
    this.url = `http://${host}:${address.port}/metrics`;
  }

  /** Serves `source` at `address` (throws Deno's AddrInUse and such, as they are). */
  static start(address: MetricsAddress, source: MetricsSource): MetricsServer {
    // Loaded only by agents: node:v8 and node:vm cost a one-liner's start 5-10 ms.
    exposeGarbageCollector();
    return new MetricsServer(address, source);
  }

  /** The exposition as a scrape would get it now. */
  scrape(): string {
    const aggregations = this.#source.aggregations();
    this.#sayLosses(aggregations);
    return exposition([
      ...aggregations.flatMap((a) => {
        const seen = this.#slots.get(a.name) ?? { slots: 0 };
        this.#slots.set(a.name, seen);
        return aggregationFamilies(a, METRICS_PREFIX, seen);
      }),
      ...this.#health(aggregations),
    ]);
  }

  /** Stops serving; a scrape under way is answered first (it never waits on anything). */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#server.finished;
  }

  #handle(request: Request): Response {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") return new Response("not found: try /metrics\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("only GET\n", { status: 405 });
    }
    const body = this.scrape();
    // A scrape leaves megabytes of short-lived objects; V8 would grow its heap to several
    // times that between its own collections. Collected once answered, an agent serving
    // 10,000 series stays near 70 MB instead of 150-200 (bench/metrics.ts).
    setTimeout(collectGarbage, 0);
    return new Response(body, {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }

  /** A full map is said once on stderr, and again each time it has lost ten times more. */
  #sayLosses(aggregations: AggregationData[]): void {
    for (const a of aggregations) {
      const said = this.#said.get(a.name) ?? 0;
      if (a.lost === 0 || a.lost < said * 10) continue;
      this.#said.set(a.name, Math.max(a.lost, 1));
      console.error(
        `tsprobe: metrics: '${a.name}' is full (${a.capacity} keys): ${a.lost} updates lost; ` +
          `raise its size option`,
      );
    }
  }

  #health(aggregations: AggregationData[]): MetricFamily[] {
    const counters = this.#source.counters();
    const spans = this.#source.spans();
    /** A family of the session's own, one sample per item, labelled by `label`. */
    const family = <T>(
      name: string,
      type: MetricFamily["type"],
      help: string,
      items: T[],
      label: (x: T) => [string, string] | undefined,
      value: (x: T) => number,
    ): MetricFamily => {
      const full = `${METRICS_PREFIX}_${name}`;
      const lines = items.map((x) => {
        const l = label(x);
        return sampleLine(full, l ? labelsText([l]) : "", value(x));
      });
      return { name: full, type, help, lines };
    };
    const byAggregation = (a: AggregationData): [string, string] => ["aggregation", a.name];
    const bySpan = (s: SpanSummary): [string, string] => ["span", s.name];
    return [
      family(
        "events_total",
        "counter",
        "Events delivered to JavaScript handlers, per probe",
        Object.entries(this.#source.events()),
        ([probe]) => ["probe", probe],
        ([, n]) => n,
      ),
      family(
        "events_dropped_total",
        "counter",
        "Events lost because the ring buffer was full",
        [this.#source.dropped()],
        () => undefined,
        (n) => n,
      ),
      family(
        "aggregation_updates_lost_total",
        "counter",
        "Aggregation updates the kernel could not make: the map was full",
        aggregations,
        byAggregation,
        (a) => a.lost,
      ),
      family(
        "aggregation_keys",
        "gauge",
        "Keys an aggregation holds",
        aggregations,
        byAggregation,
        (a) => a.rows.length,
      ),
      family(
        "aggregation_capacity",
        "gauge",
        "Most keys an aggregation's map holds",
        aggregations,
        byAggregation,
        (a) => a.capacity,
      ),
      family(
        "spans_unmatched_total",
        "counter",
        "Span ends that found no start",
        spans,
        bySpan,
        (s) => s.unmatched,
      ),
      family(
        "spans_lost_total",
        "counter",
        "Span starts lost: the map was full, or a later start replaced them",
        spans,
        bySpan,
        (s) => s.lost,
      ),
      family(
        "data_lost_total",
        "counter",
        "Data a provider could not trace, by counter (see the run's losses)",
        [...counters.losses],
        (c) => ["counter", c],
        (c) => counters.values[c] ?? 0,
      ),
    ];
  }
}
