/**
 * The lowering pass: each consumer of a stream (a JavaScript handler or an aggregation) becomes
 * an action on every view of its stream, with its lambdas compiled for that view's fields: a
 * handler sends the fields it reads; an aggregation updates one map from every site.
 *
 * @module
 */
import { aggregationMap, type AggregationPlan } from "../codegen/aggregation.ts";
import type { Action } from "./site_compiler.ts";
import type { PlannedAggregation, PlannedStream } from "./plan.ts";
import type { SessionResources } from "./resources.ts";
import type { Resolver } from "./resolve.ts";
import type { AnyFunction, ConsumerRequest } from "./requests.ts";
import { checkHandlerReads, type HandledStream } from "./handler_reads.ts";
import { fieldsRead, join, keysOn, lambdaOn } from "./views.ts";

/** What lowering made: the streams by tag (decoded later) and the aggregations. */
export interface Lowered {
  bindings: Omit<PlannedStream, "decode">[];
  aggregations: PlannedAggregation[];
}

/**
 * Lowers every consumer onto the views of its stream (adding to the sites' consumers); with
 * `histogramStats`, every histogram keeps its stats, asked for or not.
 */
export function lower(
  requests: readonly ConsumerRequest[],
  resolver: Resolver,
  res: SessionResources,
  stringSize: number,
  histogramStats = false,
): Lowered {
  const bindings: Omit<PlannedStream, "decode">[] = [];
  const aggregations: PlannedAggregation[] = [];
  const handled: HandledStream[] = [];
  for (const r of requests) {
    const wheres = r.source.predicates;
    const where = wheres.length ? `where ${wheres.map((w) => w.fn.toString()).join(" && ")}: ` : "";
    const aggregation = r.kind === "aggregate"
      ? { map: `agg_${aggregations.length}`, lostCounter: res.slot() }
      : undefined;
    const views = resolver.viewsOf(r.source);
    if (r.kind === "stream") {
      const probe = r.source.kind === "probe" ? r.source.request.name : r.source.span.name;
      handled.push({ handler: r.handler as AnyFunction, probe, views });
    }
    views.forEach((view, i) => {
      let action: Action;
      let describe: string;
      if (r.kind === "stream") {
        const tag = bindings.length;
        const fields = fieldsRead(view, r.handler as AnyFunction, stringSize);
        action = { kind: "stream", tag, fields };
        describe = `send ${fields.map((f) => join(f.event)).join(", ") || "no fields"} to ` +
          `the JavaScript handler ${summarize(r.handler)}`;
        bindings.push({ tag, probe: view.site.name, handler: r.handler });
      } else {
        const a = r.aggregation;
        const keys = keysOn(view, a.by);
        // Every site updates the same map, with the key and value compiled for its fields.
        const aggPlan: AggregationPlan = {
          ...aggregation!,
          kind: a.kind,
          keys: keys.parts,
          value: a.value ? lambdaOn(view, a.value) : undefined,
          range: a.range,
          capacity: a.size,
          stats: (a.kind === "hist" || a.kind === "lhist") && (a.stats || histogramStats),
        };
        const map = aggregationMap(aggPlan);
        if (i === 0) {
          res.declare(map);
          // A key that is a field its provider names in JavaScript (a stack) is named so.
          const keyFields = keys.parts.map((p) =>
            p.op === "field"
              ? view.fields.find((f) => join(f.field.path) === join(p.path))?.field
              : undefined
          );
          aggregations.push({
            request: a,
            plan: aggPlan,
            keyNames: keys.names,
            keyTransforms: keyFields.map((f, i) => {
              const namer = keys.namers[i];
              return f?.transform ?? (namer && ((v: unknown) => namer.name(v)));
            }),
            keyRetains: keyFields.map((f) => f?.retain),
          });
        }
        action = { kind: "aggregate", plan: aggPlan };
        describe = `${a.kind}${a.value ? ` of ${a.value.fn.toString()}` : ""}` +
          `${aggPlan.stats ? " with its sum, min and max" : ""}` +
          `${a.by ? ` by ${a.by.fn.toString()}` : ""} into map ${aggPlan.map} ` +
          `(${
            map.type === "percpu_array" ? "per-CPU array" : `per-CPU hash, ${a.size} keys`
          }) as @${a.name}`;
      }
      view.entry.consumers.push({
        predicates: view.predicates,
        action,
        describe: where + describe,
      });
    });
  }
  // After every view has the fields that reads made join it.
  checkHandlerReads(handled);
  return { bindings, aggregations };
}

function summarize(fn: AnyFunction): string {
  const s = fn.toString().replace(/\s+/g, " ");
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
