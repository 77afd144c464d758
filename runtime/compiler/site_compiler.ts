/**
 * Compiles everything attached to one probe into one program: capture the fields something
 * reads, resolve spans that end here, then for each consumer test its predicates and act:
 * update an aggregation, start a span, or send the record to JavaScript.
 *
 * The record is built in a per-CPU scratch map value (R7): fields first, then a key area
 * where keys and the values that go with them are assembled.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  type Item,
  ja,
  jmp,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R2,
  R3,
  R4,
  R7,
  R9,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { UpdateFlag } from "../../bpf/map.ts";
import { ProgramBuilder } from "../codegen/builder.ts";
import {
  type AggregationContext,
  type AggregationPlan,
  emitKey,
  emitUpdate,
  keySize,
} from "../codegen/aggregation.ts";
import { type DecodedField, eventDecoder } from "../codegen/decode.ts";
import { ExprCompiler, type Locate } from "../codegen/expr.ts";
import { type EventField, field, type PlacedField, type ViewField } from "../codegen/fields.ts";
import { emitEach, type Filter, type Frame, probeProgram } from "../codegen/probe_program.ts";
import { RecordLayout, TAG_OFFSET } from "../codegen/record.ts";
import { children, type Expr } from "../lambda/ir.ts";
import type { ProbeSite, ProgramPlan } from "../providers/provider.ts";

/** A latency (and carried values) kept from one probe to another in a hash map. */
export interface SpanPlan {
  map: string;
  /** Names of the carried values, in the order they follow the start time in the value. */
  carry: string[];
  /** Counter slots: starts stored, ends that found their start, ends that found none. */
  counters: { started: number; matched: number; unmatched: number; lost: number };
}

/** A span ending at this probe: its key computed here, its fields under `prefix`. */
export interface SpanEnd {
  span: SpanPlan;
  keys: Expr[];
  prefix: string;
  /** The end stream's own predicates: only ends that pass them end a span. */
  predicates: Expr[];
}

/** The record paths a span end adds: `[prefix, "latencyNs"]`, `[prefix, "start", name]`. */
export function spanFieldPaths(prefix: string, carry: readonly string[]): string[][] {
  return [[prefix, "latencyNs"], ...carry.map((c) => [prefix, "start", c])];
}

/** What a consumer does with an event that passes its predicates. */
export type Action =
  /** Send the record to JavaScript, to be decoded into `fields`. */
  | { kind: "stream"; tag: number; fields: ViewField[] }
  | { kind: "aggregate"; plan: AggregationPlan }
  | { kind: "span-start"; span: SpanPlan; keys: Expr[]; carry: Expr[] };

/** A consumer of the probe's events. */
export interface Consumer {
  predicates: Expr[];
  action: Action;
  /** What it is, in words, for explain listings. */
  describe: string;
}

/** Names of the session-wide maps the programs use. */
export interface SharedMaps extends AggregationContext {
  events: string;
  /**
   * Bytes of records waiting in `events` from which a record wakes the reader: below, it waits
   * for the reader's next look (it polls). A wakeup costs the traced task more than the rest
   * of the program; records sent one by one to a reader that keeps up would each make one.
   */
  wakeBytes: number;
  scratch: string;
  /** Counter slot of events left out of aggregations because a value they use is unknown. */
  unknownCounter?: number;
}

/** `bpf_ringbuf_query` and `bpf_ringbuf_output` flags (`include/uapi/linux/bpf.h`). */
const BPF_RB_AVAIL_DATA = 0, BPF_RB_NO_WAKEUP = 1, BPF_RB_FORCE_WAKEUP = 2;

/** Counter slot of events lost because the ring buffer was full. */
export const DROPPED_COUNTER = 0;

/** The result of compiling one probe. */
export interface CompiledSite {
  name: string;
  programs: ProgramPlan[];
  /** Decoders of records by stream tag. */
  decoders: Map<number, (view: DataView, base: number) => unknown>;
  /** What each decoder reads, by stream tag: event paths and where the record holds them. */
  decoded: Map<number, DecodedField[]>;
  /** Scratch bytes the program needs. */
  scratchSize: number;
  /** The record fields captured, for listings. */
  captured: Array<{ path: string; size: number }>;
}

/** The field paths an expression reads, appended to `out`. */
function fieldsOf(e: Expr, out: string[][]): string[][] {
  if (e.op === "field") out.push(e.path);
  else if (e.op === "strcmp") out.push(e.field.path);
  else children(e).forEach((x) => fieldsOf(x, out));
  return out;
}

const key = (path: readonly string[]) => path.join(".");

/**
 * `field != -1` for each field an aggregation's keys and value read that may be unknown (a
 * latency whose start was not seen): such an event is left out, never aggregated as -1.
 */
function knownGuards(plan: AggregationPlan): Expr[] {
  const optional = new Map<string, Expr & { op: "field" }>();
  const visit = (e: Expr) => {
    if (e.op === "field" && e.type.kind === "int" && e.type.optional) optional.set(key(e.path), e);
    else children(e).forEach(visit);
  };
  [...plan.keys, ...(plan.value ? [plan.value] : [])].forEach(visit);
  return [...optional.values()].map((f) => ({
    op: "compare",
    operator: "!=",
    left: f,
    right: { op: "const", value: -1n, type: f.type },
    type: { kind: "bool" },
  }));
}

function exprsOf(c: Consumer): Expr[] {
  const a = c.action;
  switch (a.kind) {
    case "aggregate":
      return [...c.predicates, ...a.plan.keys, ...(a.plan.value ? [a.plan.value] : [])];
    case "span-start":
      return [...c.predicates, ...a.keys, ...a.carry];
    case "stream":
      return c.predicates;
  }
}

/** Compiles one probe with its span ends and consumers. */
export function compileSite(
  site: ProbeSite,
  spanEnds: readonly SpanEnd[],
  consumers: readonly Consumer[],
  maps: SharedMaps,
  filter: Filter,
): CompiledSite {
  const derived = spanEnds.flatMap((end) =>
    spanFieldPaths(end.prefix, end.span.carry).map((path, i) =>
      field(path, i === 0 ? { type: "latency" } : { type: "int", size: 8, signed: true }, () => {})
    )
  );
  const catalog = new Map<string, EventField>(
    [...site.fields, ...derived].map((f) => [key(f.path), f]),
  );
  // What is read: fields of every expression (span keys included) and of every stream.
  const wanted = new Set<string>();
  for (const e of site.requires ?? []) fieldsOf(e, []).forEach((p) => wanted.add(key(p)));
  for (const c of consumers) {
    for (const e of exprsOf(c)) fieldsOf(e, []).forEach((p) => wanted.add(key(p)));
    if (c.action.kind === "stream") c.action.fields.forEach((f) => wanted.add(key(f.field.path)));
  }
  for (const end of spanEnds) {
    for (const e of [...end.keys, ...end.predicates]) {
      fieldsOf(e, []).forEach((p) => wanted.add(key(p)));
    }
    spanFieldPaths(end.prefix, end.span.carry).forEach((p) => wanted.add(key(p)));
  }
  // A field that is part of another (one capture filling several fields) needs the whole.
  for (const name of [...wanted]) {
    const whole = catalog.get(name)?.partOf;
    if (whole) wanted.add(key(whole.path));
  }
  // The program at the probe, and those beside it, for what is read of the site's own fields.
  const own = new Set(site.fields.map((f) => key(f.path)));
  const read = new Set([...wanted].filter((p) => own.has(p)));
  const { hook, companions } = { ...site, ...site.fit?.(read) };
  const layout = new RecordLayout();
  const slots = new Map<string, PlacedField>();
  for (const [name, f] of catalog) {
    if (wanted.has(name) && !f.partOf) {
      slots.set(name, { offset: layout.reserve(f.size), field: f });
    }
  }
  for (const [name, f] of catalog) {
    if (!wanted.has(name) || !f.partOf) continue;
    const whole = slots.get(key(f.partOf.path))!;
    slots.set(name, { offset: whole.offset + f.partOf.offset, field: f });
  }
  const locate: Locate = (path) => {
    const slot = slots.get(key(path));
    if (!slot) throw new Error(`internal: field ${key(path)} was not captured`);
    return slot;
  };
  const keyArea = layout.reserve(0);
  const keyRoom = Math.max(
    8,
    ...consumers.map((c) =>
      c.action.kind === "aggregate"
        ? keySize(c.action.plan.keys) + 8
        : c.action.kind === "span-start"
        ? keySize(c.action.keys) + 8 + 8 * c.action.carry.length
        : 0
    ),
    ...spanEnds.map((e) => keySize(e.keys)),
  );
  const scratchSize = keyArea + keyRoom;

  const frame: Frame = { scratch: maps.scratch, state: hook.state };
  const body = (b: ProgramBuilder) => {
    const repeat = hook.repeat;
    if (!repeat) return once(b);
    capture(b, false);
    emitEach(b, frame, repeat, once);
  };
  const derivedNames = new Set(derived.map((f) => key(f.path)));
  /** Captures the fields that are the same for every element (all, when `each` is unset). */
  const capture = (b: ProgramBuilder, each: boolean | undefined) => {
    for (const [name, slot] of slots) {
      const f = slot.field;
      if (derivedNames.has(name) || f.partOf) continue;
      if (each === undefined || (f.perElement ?? false) === each) f.capture(b, slot.offset);
    }
  };
  const once = (b: ProgramBuilder) => {
    const exprs = new ExprCompiler(b, locate);
    capture(b, b.loopIndex === undefined ? undefined : true);
    for (const end of spanEnds) emitSpanEnd(b, exprs, locate, end, keyArea, maps.counters);
    for (const c of consumers) {
      const skip = b.fresh("next_consumer");
      for (const p of [...site.requires ?? [], ...c.predicates]) exprs.test(p, skip);
      const unknown = c.action.kind === "aggregate" ? knownGuards(c.action.plan) : [];
      const counted = b.fresh("unknown_value");
      for (const g of unknown) exprs.test(g, counted);
      emitAction(b, exprs, locate, c.action, keyArea, layout.recordSize, maps);
      if (unknown.length && maps.unknownCounter !== undefined) {
        b.emit(ja(skip)).mark(counted);
        b.increment(maps.counters, maps.unknownCounter);
      } else if (unknown.length) b.mark(counted);
      b.mark(skip);
    }
  };
  const instructions: Item[] = probeProgram({
    filter,
    guard: hook.guard,
    subject: hook.subject,
    ...frame,
    body,
  });
  // Decoded as the layout placed each field (a span's latency is the site's own field).
  const decoded = new Map<number, DecodedField[]>();
  for (const c of consumers) {
    if (c.action.kind !== "stream") continue;
    decoded.set(
      c.action.tag,
      c.action.fields.map((f) => ({ event: f.event, ...locate(f.field.path) })),
    );
  }
  const decoders = new Map(
    [...decoded].map(([tag, fields]) => [tag, eventDecoder(fields, site.constants)]),
  );
  return {
    name: site.name,
    programs: [...companions, {
      name: hook.name,
      type: hook.type,
      instructions,
      attach: hook.attach,
      expectedAttachType: hook.expectedAttachType,
      attachBtfId: hook.attachBtfId,
    }],
    decoders,
    decoded,
    scratchSize,
    captured: [...slots].filter(([, s]) => !s.field.partOf)
      .map(([path, s]) => ({ path, size: s.field.size })),
  };
}

function emitAction(
  b: ProgramBuilder,
  exprs: ExprCompiler,
  locate: Locate,
  a: Action,
  keyArea: number,
  recordSize: number,
  maps: SharedMaps,
): void {
  switch (a.kind) {
    case "stream": {
      const sent = b.fresh("sent");
      const quiet = b.fresh("quiet");
      b.emit(
        st("W", R7, TAG_OFFSET, a.tag),
        ldMap(R1, maps.events),
        mov64(R2, imm(BPF_RB_AVAIL_DATA)),
        call("ringbuf_query"),
        mov64(R4, imm(BPF_RB_NO_WAKEUP)),
        jmp("JLT", R0, imm(maps.wakeBytes), quiet),
        mov64(R4, imm(BPF_RB_FORCE_WAKEUP)),
      ).mark(quiet);
      b.emit(
        ldMap(R1, maps.events),
        mov64(R2, R7),
        mov64(R3, imm(recordSize)),
        call("ringbuf_output"),
        jmp("JEQ", R0, imm(0), sent),
      );
      b.increment(maps.counters, DROPPED_COUNTER).mark(sent);
      return;
    }
    case "aggregate": {
      const plan = a.plan;
      emitKey(b, exprs, locate, plan.keys, keyArea);
      const valueAt = keyArea + keySize(plan.keys);
      if (plan.value) {
        exprs.value(plan.value);
        b.emit(stx("DW", R7, valueAt, R0));
      }
      emitUpdate(b, plan, maps, keyArea, valueAt);
      return;
    }
    case "span-start": {
      emitKey(b, exprs, locate, a.keys, keyArea);
      const valueAt = keyArea + keySize(a.keys);
      b.emit(stx("DW", R7, valueAt, R9));
      a.carry.forEach((e, i) => {
        exprs.value(e);
        b.emit(stx("DW", R7, valueAt + 8 + 8 * i, R0));
      });
      const stored = b.fresh("span_stored");
      b.emit(
        ldMap(R1, a.span.map),
        mov64(R2, R7),
        alu64("ADD", R2, imm(keyArea)),
        mov64(R3, R7),
        alu64("ADD", R3, imm(valueAt)),
        mov64(R4, imm(Number(UpdateFlag.any))),
        call("map_update_elem"),
        jmp("JEQ", R0, imm(0), stored),
      );
      const counted = b.fresh("span_counted");
      b.increment(maps.counters, a.span.counters.lost).emit(ja(counted));
      b.mark(stored).increment(maps.counters, a.span.counters.started).mark(counted);
      return;
    }
  }
}

/**
 * Looks up the span's start by the key computed here; when found, fills the latency and the
 * carried values and deletes the start; when not, the latency is all ones ("unknown").
 */
function emitSpanEnd(
  b: ProgramBuilder,
  exprs: ExprCompiler,
  locate: Locate,
  end: SpanEnd,
  keyArea: number,
  counters: string,
): void {
  const [latencyPath, ...carryPaths] = spanFieldPaths(end.prefix, end.span.carry);
  const latency = locate(latencyPath).offset;
  const found = b.fresh("span_found");
  const done = b.fresh("span_done");
  const notAnEnd = b.fresh("not_an_end");
  for (const p of end.predicates) exprs.test(p, notAnEnd);
  emitKey(b, exprs, locate, end.keys, keyArea);
  b.emit(
    ldMap(R1, end.span.map),
    mov64(R2, R7),
    alu64("ADD", R2, imm(keyArea)),
    call("map_lookup_elem"),
    jmp("JNE", R0, imm(0), found),
    st("DW", R7, latency, -1),
  );
  b.increment(counters, end.span.counters.unmatched).emit(ja(done)).mark(found);
  b.emit(ldx("DW", R1, R0, 0), mov64(R2, R9), alu64("SUB", R2, R1), stx("DW", R7, latency, R2));
  carryPaths.forEach((p, i) => {
    b.emit(ldx("DW", R1, R0, 8 + 8 * i), stx("DW", R7, locate(p).offset, R1));
  });
  b.emit(
    ldMap(R1, end.span.map),
    mov64(R2, R7),
    alu64("ADD", R2, imm(keyArea)),
    call("map_delete_elem"),
  );
  b.increment(counters, end.span.counters.matched);
  // The verifier refuses unreachable code: the not-an-end path only exists with predicates.
  if (end.predicates.length) b.emit(ja(done)).mark(notAnEnd).emit(st("DW", R7, latency, -1));
  b.mark(done);
}
