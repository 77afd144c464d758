/**
 * Plans a session: from what the user asked (streams of probe events, their predicates, the
 * handlers, aggregations and spans on them) to the maps to create and the programs to load,
 * in passes:
 *
 * 1. resolve (`resolve.ts`, `views.ts`, `spans.ts`): each stream's source to views on its
 *    probe sites, predicates compiled there, spans planned;
 * 2. lower (`lower.ts`): each consumer to an action on every view of its stream;
 * 3. compile each site (`site_compiler.ts`): lay out its record, emit its program, and build
 *    the decoders of its streams from that layout;
 * 4. here: the session's own maps (pids, counters, scratch, zeros) and programs (follow).
 *
 * Lambdas are compiled in the first two, so every error a script can make surfaces before
 * anything is loaded; nothing here touches the kernel but the reads of tracefs and BTF.
 *
 * @module
 */
import type { BpfMap, MapSpec } from "../../bpf/map.ts";
import { SessionResources } from "./resources.ts";
import { type AggregationPlan, keptInArray, valueSize } from "../codegen/aggregation.ts";
import type { Filter } from "../codegen/probe_program.ts";
import type { ProgramPlan, SiteContext } from "../providers/provider.ts";
import { type CompiledSite, compileSite, type Consumer, type SpanPlan } from "./site_compiler.ts";
import type { AggregationRequest, ConsumerRequest } from "./requests.ts";
import { Resolver } from "./resolve.ts";
import { lower } from "./lower.ts";
import { STACK_FIELDS, STACK_MAP } from "../codegen/stacks.ts";

/** Session-wide settings that shape the programs. */
export interface PlanOptions {
  filter: Filter;
  stringSize: number;
  /** Every histogram keeps its values' sum, min and max (for metrics' `_sum`). */
  histogramStats?: boolean;
  /** Bytes of the ring buffer that carries records to JavaScript. */
  ringBytes: number;
  /**
   * The programs that trace the descendants of processes in the pid map (a command's
   * children), given the map's name and size; none when absent.
   */
  follow?: (ctx: SiteContext, pids: string, capacity: number) => ProgramPlan[];
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
  /**
   * Per key part, how its kernel value reads in JavaScript where a field's provider says
   * (a stack id becomes its frames); undefined parts are shown as they are.
   */
  keyTransforms: Array<((kernel: unknown) => unknown) | undefined>;
  /** Per key part, what to keep of its values while the session runs (see `EventField`). */
  keyRetains: Array<((kernel: unknown) => void) | undefined>;
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

/** Plans the maps and programs for these consumers. */
export function plan(requests: readonly ConsumerRequest[], options: PlanOptions): Plan {
  const res = new SessionResources();
  const declare = (spec: MapSpec) => res.declare(spec);
  const ctx: SiteContext = {
    filter: options.filter,
    stringSize: options.stringSize,
    map: declare,
    counter: (name: string, loss?: string) => res.counter(name, loss),
    counters: SessionMaps.counters,
    scratch: SessionMaps.scratch,
  };
  const resolver = new Resolver(ctx, res);

  const { bindings, aggregations } = lower(
    requests,
    resolver,
    res,
    options.stringSize,
    options.histogramStats,
  );

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
  // What a new key of a hash starts from (an array's one key is always there).
  const hashed = aggregations.filter((a) => !keptInArray(a.plan));
  const zeroSize = Math.max(8, ...hashed.map((a) => valueSize(a.plan)));
  if (hashed.length) {
    declare({
      name: SessionMaps.zeros,
      type: "array",
      keySize: 4,
      valueSize: zeroSize,
      maxEntries: 1,
    });
  }
  if (aggregations.length) {
    res.counter(UNKNOWN_SKIPPED, "events left out of aggregations: a latency's start was not seen");
  }
  const shared = {
    events: SessionMaps.events,
    // Woken in bulk: at 64 KiB (a quarter of a smaller ring), else at the reader's next poll.
    wakeBytes: Math.min(64 << 10, options.ringBytes / 4),
    scratch: SessionMaps.scratch,
    counters: SessionMaps.counters,
    zeros: SessionMaps.zeros,
    unknownCounter: res.slotOf(UNKNOWN_SKIPPED),
  };
  // A site that no consumer can fire on (all pinned elsewhere by their predicates) is left out.
  const live = resolver.entries.flatMap((s) => {
    const consumers = s.consumers.filter((c) => !s.site.excludes?.(c.predicates));
    return consumers.length || s.ends.length ? [{ ...s, consumers }] : [];
  });
  const compiled = live.map((s) => ({
    site: compileSite(s.site, s.ends, s.consumers, shared, filter),
    consumers: s.consumers,
  }));
  // Stack ids point into one map, made only where a site reads a stack.
  if (compiled.some((c) => c.site.captured.some((f) => STACK_FIELDS.includes(f.path)))) {
    declare(STACK_MAP);
  }
  const follow = options.follow && filter.pidsMap
    ? options.follow(ctx, filter.pidsMap, PIDS_CAPACITY)
    : [];
  // Sized once every program is generated: generating them may name more counters.
  declare({
    name: SessionMaps.counters,
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: res.slots,
  });
  const scratchSize = Math.max(8, ...compiled.map((c) => c.site.scratchSize));
  declare({
    name: SessionMaps.scratch,
    type: "percpu_array",
    keySize: 4,
    valueSize: Math.ceil(scratchSize / 8) * 8,
    maxEntries: 1,
  });
  // Each stream decodes with what the pass that laid out its site's records built. A stream
  // left out of every site (its predicates pinned it elsewhere) never gets records.
  const decoders = new Map(compiled.flatMap((c) => [...c.site.decoders]));
  const streams: PlannedStream[] = bindings.map((b) => ({
    ...b,
    decode: decoders.get(b.tag) ?? (() => undefined),
  }));
  const programs = compiled.flatMap((c) =>
    c.site.programs.map((plan) => ({ plan, probe: c.site.name }))
  );
  programs.push(...follow.map((plan) => ({ probe: "follow descendants", plan })));
  return {
    maps: res.maps,
    programs,
    streams,
    aggregations,
    spans: resolver.spans,
    sites: compiled,
    prepare: live.flatMap((e) => e.site.prepare ? [e.site.prepare] : []),
    // One site's upkeep serves every site sharing its maps.
    tick: [...new Set(live.flatMap((e) => e.site.tick ? [e.site.tick] : []))],
    counters: res.counters,
    losses: res.losses,
    notes: resolver.notes,
  };
}
