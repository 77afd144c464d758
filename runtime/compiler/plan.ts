/**
 * Plans a session: from what the user asked (streams of probe events, their predicates, the
 * handlers, aggregations and spans on them) to the maps to create and the programs to load.
 * Lambdas are compiled here, so every error a script can make surfaces before anything is
 * loaded; nothing here touches the kernel but the reads of tracefs and BTF.
 *
 * @module
 */
import type { BpfMap, MapSpec } from "../../bpf/map.ts";
import { attachTracepoint } from "../../bpf/link.ts";
import type { AggregationKind, LinearRange } from "../aggregate/data.ts";
import { aggregationMap, type AggregationPlan, valueSize } from "../codegen/aggregation.ts";
import type { EventField } from "../codegen/fields.ts";
import { taskField } from "../codegen/btf_field.ts";
import { followProgram, unfollowProgram } from "../codegen/follow_program.ts";
import type { Filter } from "../codegen/probe_program.ts";
import { compileKeyLambda, compileLambda } from "../lambda/compile.ts";
import { type Expr, type FieldInfo, type FieldResolver, LambdaError } from "../lambda/ir.ts";
import { eventReads } from "../lambda/reads.ts";
import {
  type ProbeRequest,
  type ProbeSite,
  type ProgramPlan,
  SiteUnavailableError,
} from "../providers/provider.ts";
import { tracepointFormat } from "../providers/tracepoint.ts";
import { ArgumentError } from "../arguments.ts";
import {
  type Action,
  type CompiledSite,
  compileSite,
  type Consumer,
  DROPPED_COUNTER,
  type SpanEnd,
  type SpanPlan,
} from "./site_compiler.ts";

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

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
}

/** What one consumer asks for. */
export type ConsumerRequest =
  | { source: StreamSource; kind: "stream"; handler: (event: unknown) => void }
  | { source: StreamSource; kind: "aggregate"; aggregation: AggregationRequest };

/** Session-wide settings that shape the programs. */
export interface PlanOptions {
  filter: Filter;
  stringSize: number;
  /** Trace the descendants of processes in the pid map (a command's children). */
  follow: boolean;
}

/** A stream consumer's handler and how to decode its records. */
export interface PlannedStream {
  tag: number;
  probe: string;
  handler: (event: unknown) => void;
  decode: (view: DataView, base: number) => unknown;
}

/** An aggregation with its compiled plan. */
export interface PlannedAggregation {
  request: AggregationRequest;
  plan: AggregationPlan;
  keyNames: string[];
}

/** Everything a session creates and loads. */
export interface Plan {
  maps: MapSpec[];
  programs: Array<{ plan: ProgramPlan; probe: string }>;
  streams: PlannedStream[];
  aggregations: PlannedAggregation[];
  spans: Array<{ name: string; plan: SpanPlan }>;
  sites: Array<{ site: CompiledSite; consumers: Consumer[] }>;
  /** Fill maps the programs read, once the maps exist (see `ProbeSite.prepare`). */
  prepare: Array<(maps: ReadonlyMap<string, BpfMap>) => void>;
  /** Upkeep of the sites' maps while the session runs (see `ProbeSite.tick`). */
  tick: Array<(maps: ReadonlyMap<string, BpfMap>) => Record<string, number> | void>;
  /** Counter slots providers asked for, by name. */
  counters: ReadonlyMap<string, number>;
  /** What each counter that counts a loss lost (see `SiteContext.counter`), by name. */
  losses: ReadonlyMap<string, string>;
  /** One line per optional probe this kernel lacks, left out of the session. */
  notes: string[];
}

/** The counter of a traced command's children that could not be followed (full pid map). */
export const FOLLOW_LOST = "follow.lost";

/**
 * The counter of events left out of aggregations because a value they use is unknown (a
 * latency whose start was not seen).
 */
export const UNKNOWN_SKIPPED = "aggregations.unknown";

/** How many pids a session traces at once: its `pid` options and the command's live tasks. */
export const PIDS_CAPACITY = 8192;

/** Names of the maps every session may have. */
export const SessionMaps = {
  events: "events",
  counters: "counters",
  scratch: "scratch",
  zeros: "zeros",
  pids: "pids",
} as const;

/** How a stream's events map to record fields on one site: event path → record path and type. */
interface View {
  entry: Entry;
  site: ProbeSite;
  /** Event fields with the record path each is read from. */
  fields: Array<{ event: string[]; record: string[]; field: EventField }>;
  resolve: FieldResolver;
  toRecord(path: readonly string[]): string[];
  /** Predicates over this view, already compiled. */
  predicates: Expr[];
}

const join = (p: readonly string[]) => p.join(".");

/**
 * Finds a field of the view by its event path; a field the kernel's BTF describes (`task...`)
 * joins the view and its probe's catalog the first time something names it.
 */
function findField(
  view: Omit<View, "resolve" | "predicates">,
  path: readonly string[],
  stringSize: number,
): EventField | undefined {
  const known = view.fields.find((f) => join(f.event) === join(path));
  if (known) return known.field;
  const found = taskField([...path], stringSize);
  if (!found) return undefined;
  if (!view.site.fields.some((f) => join(f.path) === join(path))) view.site.fields.push(found);
  view.fields.push({ event: [...path], record: [...path], field: found });
  return found;
}

function resolverOf(view: Omit<View, "resolve" | "predicates">, stringSize: number): FieldResolver {
  const constants = new Map(view.site.constants.map((c) => [join(c.path), c.constant]));
  return (path): FieldInfo | undefined => {
    const f = findField(view, path, stringSize);
    if (f?.type) return { type: f.type };
    if (f) {
      throw new LambdaError(
        "the field is decoded in JavaScript and cannot be used in the kernel",
        `e.${path.join(".")}`,
      );
    }
    const c = constants.get(join(path));
    return c === undefined ? undefined : { constant: c };
  };
}

/** `e` with `f` applied to each direct subexpression. */
function mapChildren(e: Expr, f: (x: Expr) => Expr): Expr {
  switch (e.op) {
    case "field":
    case "strcmp":
    case "const":
      return e;
    case "neg":
    case "not":
    case "bitnot":
    case "abs":
      return { ...e, arg: f(e.arg) };
    case "cond":
      return { ...e, test: f(e.test), then: f(e.then), else: f(e.else) };
    case "min":
    case "max":
      return { ...e, args: e.args.map(f) };
    default:
      return { ...e, left: f(e.left), right: f(e.right) };
  }
}

/** `e` reading record paths instead of event paths. */
function rewrite(e: Expr, to: (p: readonly string[]) => string[]): Expr {
  if (e.op === "field") return { ...e, path: to(e.path) };
  if (e.op === "strcmp") return { ...e, field: { ...e.field, path: to(e.field.path) } };
  return mapChildren(e, (x) => rewrite(x, to));
}

/** String equality on fields that have a cheaper integer form becomes that comparison. */
function lowerStrings(view: View, e: Expr): Expr {
  if (e.op === "strcmp" && e.mode === "eq") {
    const field = view.fields.find((f) => join(f.event) === join(e.field.path))?.field;
    const target = field?.compareAs?.(e.value);
    const as = target && view.fields.find((f) => join(f.event) === join(target.path))?.field;
    if (target && as?.type) {
      return {
        op: "compare",
        operator: "==",
        left: { op: "field", path: target.path, type: as.type },
        right: { op: "const", value: target.value, type: as.type },
        type: { kind: "bool" },
      };
    }
  }
  return mapChildren(e, (x) => lowerStrings(view, x));
}

/** Compiles a lambda over a view into an expression on record paths. */
function lambdaOn(view: View, ref: LambdaRef): Expr {
  const expr = lowerStrings(view, compileLambda(ref.fn, view.resolve, ref.params).expr);
  return rewrite(expr, view.toRecord);
}

function keysOn(view: View, ref: LambdaRef | undefined): { parts: Expr[]; names: string[] } {
  if (!ref) return { parts: [], names: [] };
  const k = compileKeyLambda(ref.fn, view.resolve, ref.params);
  const parts = k.parts.map((p) => rewrite(p, view.toRecord));
  return {
    parts,
    names: parts.length === 1 ? [k.source] : parts.map((_, i) => `${k.source}[${i}]`),
  };
}

/** The record fields a JavaScript handler needs: those it reads, or all when unsure. */
function fieldsRead(view: View, handler: AnyFunction, stringSize: number): View["fields"] {
  const reads = eventReads(handler);
  if (reads === "all") return view.fields;
  // BTF fields join the view when read: the longest prefix of a read path that names one.
  for (const r of reads) {
    for (let n = r.length; n > 1 && !findField(view, r.slice(0, n), stringSize); n--);
  }
  const prefixOf = (a: readonly string[], b: readonly string[]) => a.every((s, i) => b[i] === s);
  return view.fields.filter((f) => reads.some((r) => prefixOf(r, f.event) || prefixOf(f.event, r)));
}

/** One site of a probe, and what was compiled into it so far. */
interface Entry {
  site: ProbeSite;
  ends: SpanEnd[];
  consumers: Consumer[];
}

/** Plans the maps and programs for these consumers. */
export function plan(requests: readonly ConsumerRequest[], options: PlanOptions): Plan {
  const maps = new Map<string, MapSpec>();
  const declare = (spec: MapSpec) => {
    if (!maps.has(spec.name)) maps.set(spec.name, spec);
    return spec.name;
  };
  let counters = DROPPED_COUNTER + 1;
  const named = new Map<string, number>();
  const losses = new Map<string, string>();
  const sites = new Map<string, Entry[]>();
  const notes: string[] = [];
  const entriesOf = (request: ProbeRequest): Entry[] => {
    let entries = sites.get(request.key);
    if (!entries) {
      const ctx = {
        filter: options.filter,
        stringSize: options.stringSize,
        map: declare,
        counter: (name: string, loss?: string) => {
          if (!named.has(name)) named.set(name, counters++);
          if (loss) losses.set(name, loss);
          return named.get(name)!;
        },
        counters: SessionMaps.counters,
        scratch: SessionMaps.scratch,
      };
      try {
        entries = request.sites(ctx).map((site) => ({ site, ends: [], consumers: [] }));
      } catch (e) {
        if (!(request.optional && e instanceof SiteUnavailableError)) throw e;
        notes.push(e.message);
        entries = [];
      }
      sites.set(request.key, entries);
    }
    return entries;
  };
  /** A view of each site of a probe stream, its predicates compiled there. */
  const probeViews = (source: StreamSource & { kind: "probe" }): View[] =>
    entriesOf(source.request).map((entry) => {
      const base = {
        entry,
        site: entry.site,
        fields: entry.site.fields.map((f) => ({ event: f.path, record: f.path, field: f })),
        toRecord: (p: readonly string[]) => [...p],
      };
      const view: View = { ...base, resolve: resolverOf(base, options.stringSize), predicates: [] };
      view.predicates = source.predicates.map((p) => lambdaOn(view, p));
      return view;
    });

  const spans = new Map<SpanRequest, { views: View[]; plan: SpanPlan }>();
  const spanViews = (span: SpanRequest): View[] => {
    const known = spans.get(span);
    if (known) return known.views;
    const id = spans.size;
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
    if (!starts.length || !ends.length) return [];
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
    const map = declare({
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
        started: counters++,
        matched: counters++,
        unmatched: counters++,
        lost: counters++,
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
        { event: ["latencyNs"], record: latency.path, field: latency },
        ...carryNames.map((n) => ({
          event: ["start", n],
          record: [prefix, "start", n],
          field: {
            ...latency,
            path: [prefix, "start", n],
            decoding: { type: "int", size: 8, signed: true },
          } as EventField,
        })),
      ];
      const toRecord = (p: readonly string[]) =>
        fields.find((f) => join(f.event) === join(p))?.record ?? [...p];
      const base = { entry: endView.entry, site: endView.site, fields, toRecord };
      return {
        ...base,
        resolve: resolverOf(base, options.stringSize),
        predicates: [...endView.predicates, matched],
      };
    });
    spans.set(span, { views, plan: spanPlan });
    return views;
  };
  const viewsOf = (source: StreamSource): View[] => {
    if (source.kind === "probe") return probeViews(source);
    return spanViews(source.span).map((v) => ({
      ...v,
      predicates: [...v.predicates, ...source.predicates.map((p) => lambdaOn(v, p))],
    }));
  };

  const streams: PlannedStream[] = [];
  const aggregations: PlannedAggregation[] = [];
  for (const r of requests) {
    const wheres = r.source.predicates;
    const where = wheres.length ? `where ${wheres.map((w) => w.fn.toString()).join(" && ")}: ` : "";
    const aggregation = r.kind === "aggregate"
      ? { map: `agg_${aggregations.length}`, lostCounter: counters++ }
      : undefined;
    viewsOf(r.source).forEach((view, i) => {
      let action: Action;
      let describe: string;
      if (r.kind === "stream") {
        const tag = streams.length;
        const fields = fieldsRead(view, r.handler as AnyFunction, options.stringSize);
        action = {
          kind: "stream",
          tag,
          fields: fields.map((f) => ({ event: f.event, record: f.record })),
        };
        describe = `send ${fields.map((f) => join(f.event)).join(", ") || "no fields"} to ` +
          `the JavaScript handler ${summarize(r.handler)}`;
        streams.push({ tag, probe: view.site.name, handler: r.handler, decode: () => undefined });
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
        };
        if (i === 0) {
          declare(aggregationMap(aggPlan));
          aggregations.push({ request: a, plan: aggPlan, keyNames: keys.names });
        }
        action = { kind: "aggregate", plan: aggPlan };
        describe = `${a.kind}${a.value ? ` of ${a.value.fn.toString()}` : ""}` +
          `${a.by ? ` by ${a.by.fn.toString()}` : ""} into map ${aggPlan.map} ` +
          `(per-CPU hash, ${a.size} keys) as @${a.name}`;
      }
      view.entry.consumers.push({
        predicates: view.predicates,
        action,
        describe: where + describe,
      });
    });
  }

  const filter = options.filter;
  if (filter.pidsMap) {
    declare({
      name: filter.pidsMap,
      type: "hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: PIDS_CAPACITY,
    });
  }
  const zeroSize = Math.max(8, ...aggregations.map((a) => valueSize(a.plan.kind, a.plan.range)));
  if (aggregations.length) {
    declare({
      name: SessionMaps.zeros,
      type: "array",
      keySize: 4,
      valueSize: zeroSize,
      maxEntries: 1,
    });
  }
  if (aggregations.length) {
    named.set(UNKNOWN_SKIPPED, counters++);
    losses.set(UNKNOWN_SKIPPED, "events left out of aggregations: a latency's start was not seen");
  }
  const shared = {
    events: SessionMaps.events,
    scratch: SessionMaps.scratch,
    counters: SessionMaps.counters,
    zeros: SessionMaps.zeros,
    unknownCounter: named.get(UNKNOWN_SKIPPED),
  };
  // A site that no consumer can fire on (all pinned elsewhere by their predicates) is left out.
  const live = [...sites.values()].flat().flatMap((s) => {
    const consumers = s.consumers.filter((c) => !s.site.excludes?.(c.predicates));
    return consumers.length || s.ends.length ? [{ ...s, consumers }] : [];
  });
  const compiled = live.map((s) => ({
    site: compileSite(s.site, s.ends, s.consumers, shared, filter),
    consumers: s.consumers,
  }));
  if (options.follow) {
    named.set(FOLLOW_LOST, counters++);
    losses.set(
      FOLLOW_LOST,
      `processes the command started were not traced: the map of traced pids was full ` +
        `(${PIDS_CAPACITY} at once)`,
    );
  }
  // Sized once every program is generated: generating them may name more counters.
  declare({
    name: SessionMaps.counters,
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: counters,
  });
  const scratchSize = Math.max(8, ...compiled.map((c) => c.site.scratchSize));
  declare({
    name: SessionMaps.scratch,
    type: "percpu_array",
    keySize: 4,
    valueSize: Math.ceil(scratchSize / 8) * 8,
    maxEntries: 1,
  });
  for (const s of streams) {
    // A stream left out of every site (its predicates pinned it elsewhere) never gets records.
    const site = compiled.find((c) => c.site.decoders.has(s.tag))?.site;
    if (site) s.decode = site.decoders.get(s.tag)!;
  }
  const programs = compiled.flatMap((c) =>
    c.site.programs.map((plan) => ({ plan, probe: c.site.name }))
  );
  if (options.follow) {
    const fork = tracepointFormat("sched", "sched_process_fork");
    const exit = tracepointFormat("sched", "sched_process_exit");
    const childPid = fork.fields.find((f) => f.name === "child_pid")!;
    const lost = named.get(FOLLOW_LOST)!;
    programs.push({
      probe: "follow descendants",
      plan: {
        name: "tsp_follow",
        type: "tracepoint",
        instructions: followProgram(SessionMaps.pids, childPid.offset, SessionMaps.counters, lost),
        attach: (p) => attachTracepoint(p, fork.id, "sched:sched_process_fork"),
      },
    }, {
      probe: "follow descendants",
      plan: {
        name: "tsp_unfollow",
        type: "tracepoint",
        instructions: unfollowProgram(SessionMaps.pids),
        attach: (p) => attachTracepoint(p, exit.id, "sched:sched_process_exit"),
      },
    });
  }
  return {
    maps: [...maps.values()],
    programs,
    streams,
    aggregations,
    spans: [...spans.entries()].map(([r, s]) => ({ name: r.name, plan: s.plan })),
    sites: compiled,
    prepare: live.flatMap((e) => e.site.prepare ? [e.site.prepare] : []),
    // One site's upkeep serves every site sharing its maps.
    tick: [...new Set(live.flatMap((e) => e.site.tick ? [e.site.tick] : []))],
    counters: named,
    losses,
    notes,
  };
}

function summarize(fn: AnyFunction): string {
  const s = fn.toString().replace(/\s+/g, " ");
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
