/**
 * Planning spans: from a start stream and an end stream with a common key to a map of pending
 * starts, the start and end actions on the probe sites, and the view of the span's events.
 *
 * @module
 */
import type { EventField } from "../codegen/fields.ts";
import type { Expr } from "../lambda/ir.ts";
import { ArgumentError } from "../arguments.ts";
import type { SessionResources } from "./resources.ts";
import type { SpanPlan } from "./site_compiler.ts";
import type { SpanRequest, StreamSource } from "./requests.ts";
import { join, keysOn, lambdaOn, resolverOf, type View } from "./views.ts";

/**
 * Plans span `span` (number `id`): a hash of its starts keyed by the start key, a span-start
 * action on each site of the start stream and a span end on each of the end stream; returns
 * the views of its events (the end's fields, with `latencyNs` and the carried `start` values),
 * or none when an optional probe it needs is missing.
 */
export function planSpan(
  span: SpanRequest,
  id: number,
  probeViews: (source: StreamSource & { kind: "probe" }) => View[],
  res: SessionResources,
  stringSize: number,
): { views: View[]; plan?: SpanPlan } {
  const carryNames = Object.keys(span.carry);
  const starts = probeViews(span.start).map((view) => ({
    view,
    keys: keysOn(view, span.key[0]).parts,
    carry: carryNames.map((n) => lambdaOn(view, span.carry[n])),
  }));
  const ends = probeViews(span.end).map((view) => ({
    view,
    keys: keysOn(view, span.key[1]).parts,
  }));
  // An optional probe this kernel lacks: the span has nothing to time.
  if (!starts.length || !ends.length) return { views: [] };
  const [startKeys, endKeys] = [starts[0].keys, ends[0].keys];
  if (startKeys.length !== endKeys.length) {
    throw new ArgumentError(
      `Span '${span.name}': the start key has ${startKeys.length} parts but the end key has ` +
        `${endKeys.length}; give both the same parts`,
    );
  }
  const keySize = startKeys.reduce((n, k) => n + (k.type.kind === "string" ? k.type.size : 8), 0);
  // A plain hash: an LRU one evicts live entries early under concurrency (its free lists are
  // per CPU), losing latencies; here a full map refuses new starts and counts them.
  const map = res.declare({
    name: `span_${id}`,
    type: "hash",
    keySize: Math.max(8, Math.ceil(keySize / 8) * 8),
    valueSize: 8 + 8 * carryNames.length,
    maxEntries: span.size,
  });
  const spanPlan: SpanPlan = {
    map,
    carry: carryNames,
    counters: {
      started: res.slot(),
      matched: res.slot(),
      unmatched: res.slot(),
      lost: res.slot(),
    },
  };
  const prefix = `$span${id}`;
  for (const start of starts) {
    start.view.entry.consumers.push({
      predicates: start.view.predicates,
      action: { kind: "span-start", span: spanPlan, keys: start.keys, carry: start.carry },
      describe: `start span '${span.name}' keyed by ${span.key[0].fn.toString()}`,
    });
  }
  const latency: EventField = {
    path: [prefix, "latencyNs"],
    type: { kind: "int", signed: true, bigint: false },
    decoding: { type: "latency" },
    size: 8,
    capture: () => {},
  };
  // Span events exist only where the start was found: the latency is known.
  const matched: Expr = {
    op: "compare",
    operator: "!=",
    left: { op: "field", path: latency.path, type: latency.type! },
    right: { op: "const", value: -1n, type: { kind: "int", signed: true, bigint: false } },
    type: { kind: "bool" },
  };
  const overridden = new Set(["latencyNs", "start"]);
  const views = ends.map(({ view: endView, keys }) => {
    endView.entry.ends.push({ span: spanPlan, keys, prefix, predicates: endView.predicates });
    const fields: View["fields"] = [
      ...endView.fields.filter((f) => !overridden.has(f.event[0])),
      { event: ["latencyNs"], field: latency },
      ...carryNames.map((n) => ({
        event: ["start", n],
        field: {
          ...latency,
          path: [prefix, "start", n],
          decoding: { type: "int", size: 8, signed: true },
        } as EventField,
      })),
    ];
    const toRecord = (p: readonly string[]) =>
      fields.find((f) => join(f.event) === join(p))?.field.path ?? [...p];
    const base = { entry: endView.entry, site: endView.site, fields, toRecord };
    return {
      ...base,
      resolve: resolverOf(base, stringSize),
      predicates: [...endView.predicates, matched],
    };
  });
  return { views, plan: spanPlan };
}
