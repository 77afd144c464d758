/**
 * Aggregations in the kernel: each is a per-CPU map from a key (integers and strings built in
 * the record's key area) to a value updated in place, so no event leaves the kernel. Reading
 * merges the CPUs' values. A key the full map cannot take is counted as a lost update.
 *
 * A per-CPU hash, but for an aggregation without `by` whose value only adds up (count, and a
 * histogram without stats): a per-CPU array of its one value, found without hashing and never
 * created. An array cannot remove its key, so clearing it remembers what it held and later
 * reads subtract that: its words only grow, so the difference is exact, and all zeros is empty.
 *
 * Values: count and sum keep one u64; min, max, avg and stats keep {count, sum, min, max};
 * hist and lhist keep one u64 per slot (their count is the slots'), after those four when the
 * histogram keeps stats.
 *
 * @module
 */
import { EEXIST } from "../../bpf/errors.ts";
import {
  alu64,
  call,
  imm,
  ja,
  jmp,
  jmp32,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R4,
  R7,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { BPF_F_NO_PREALLOC, BpfMap, type MapSpec, UpdateFlag } from "../../bpf/map.ts";
import {
  type AggregationKind,
  type AggregationRow,
  type AggregationValue,
  type KeyPart,
  linearBucket,
  type LinearRange,
  linearSlots,
  LOG2_SLOTS,
  log2Bucket,
  type Stats,
} from "../aggregate/data.ts";
import type { Expr, ValueType } from "../lambda/ir.ts";
import type { ProgramBuilder } from "./builder.ts";
import type { ExprCompiler, Locate } from "./expr.ts";
import { readCString } from "./decode.ts";

/** {count, sum, min, max}: what min/max/avg/stats keep, and what histograms start with. */
const STATS_SIZE = 32;

/** The bytes of a key part: 8 for an integer, the field's size (rounded to 8) for a string. */
function partSize(t: ValueType): number {
  return t.kind === "string" ? Math.ceil(t.size / 8) * 8 : 8;
}

/** Bytes of a key made of these parts (at least 8: a keyless aggregation has one zero word). */
export function keySize(parts: readonly Expr[]): number {
  return Math.max(8, parts.reduce((n, p) => n + partSize(p.type), 0));
}

/** Writes the key parts at R7 + `at`: integers evaluated, string fields copied word by word. */
export function emitKey(
  b: ProgramBuilder,
  exprs: ExprCompiler,
  locate: Locate,
  parts: readonly Expr[],
  at: number,
): void {
  if (parts.length === 0) b.emit(st("DW", R7, at, 0));
  let pos = at;
  for (const part of parts) {
    if (part.type.kind === "string" && part.op === "field") {
      const from = locate(part.path).offset;
      for (let p = 0; p < partSize(part.type); p += 8) {
        b.emit(ldx("DW", R0, R7, from + p), stx("DW", R7, pos + p, R0));
      }
    } else {
      exprs.value(part);
      b.emit(stx("DW", R7, pos, R0));
    }
    pos += partSize(part.type);
  }
}

/** One aggregation as the code generator and the reader need it. */
export interface AggregationPlan {
  /** Map name. */
  map: string;
  kind: AggregationKind;
  keys: Expr[];
  /** The aggregated value; absent for count. */
  value?: Expr;
  range?: LinearRange;
  /** Most keys the map holds. */
  capacity: number;
  /** Counter slot for lost updates. */
  lostCounter: number;
  /** A histogram keeps {count, sum, min, max} before its slots. */
  stats?: boolean;
}

const isHistogram = (kind: AggregationKind) => kind === "hist" || kind === "lhist";

/** Bytes before a histogram's slots: its stats, when it keeps them. */
function slotsAt(plan: Pick<AggregationPlan, "stats">): number {
  return plan.stats ? STATS_SIZE : 0;
}

/** Bytes of one CPU's value. */
export function valueSize(plan: Pick<AggregationPlan, "kind" | "range" | "stats">): number {
  switch (plan.kind) {
    case "count":
    case "sum":
      return 8;
    case "hist":
      return slotsAt(plan) + 8 * LOG2_SLOTS;
    case "lhist":
      return slotsAt(plan) + 8 * linearSlots(plan.range!);
    default:
      return STATS_SIZE;
  }
}

/** True for an aggregation kept in a per-CPU array of one value (see the module). */
export function keptInArray(plan: AggregationPlan): boolean {
  return plan.keys.length === 0 &&
    (plan.kind === "count" || (isHistogram(plan.kind) && !plan.stats));
}

/** The map an aggregation is kept in. */
export function aggregationMap(plan: AggregationPlan): MapSpec {
  if (keptInArray(plan)) {
    return {
      name: plan.map,
      type: "percpu_array",
      keySize: 4,
      valueSize: valueSize(plan),
      maxEntries: 1,
    };
  }
  return {
    name: plan.map,
    type: "percpu_hash",
    keySize: keySize(plan.keys),
    valueSize: valueSize(plan),
    maxEntries: plan.capacity,
    // Allocated on first use: maps sized for many keys cost memory only for keys seen.
    flags: BPF_F_NO_PREALLOC,
  };
}

/** Where the generated code finds what it needs besides the record. */
export interface AggregationContext {
  /** Array map whose value 0 is all zeros, at least as large as any aggregation value. */
  zeros: string;
  /** Per-CPU array of u64 counters. */
  counters: string;
}

/**
 * Updates the aggregation for the key at R7 + `keyAt`; the value, when there is one, must be
 * at R7 + `valueAt`. Creates the key with a zero value when it is new.
 */
export function emitUpdate(
  b: ProgramBuilder,
  plan: AggregationPlan,
  ctx: AggregationContext,
  keyAt: number,
  valueAt: number,
): void {
  const have = b.fresh("agg_have");
  const retry = b.fresh("agg_retry");
  const done = b.fresh("agg_done");
  const lookup = () => {
    b.emit(ldMap(R1, plan.map), mov64(R2, R7), alu64("ADD", R2, imm(keyAt)));
    b.emit(call("map_lookup_elem"));
  };
  lookup();
  if (keptInArray(plan)) {
    // The key (0) is always there; the verifier still wants the test.
    b.emit(jmp("JEQ", R0, imm(0), done));
    emitApply(b, plan, valueAt);
    b.mark(done);
    return;
  }
  b.emit(jmp("JNE", R0, imm(0), have));
  const zeroKey = b.alloc(8);
  b.emit(st("DW", R10, zeroKey, 0));
  b.lookup(ctx.zeros, zeroKey, done);
  b.emit(
    mov64(R3, R0),
    ldMap(R1, plan.map),
    mov64(R2, R7),
    alu64("ADD", R2, imm(keyAt)),
    mov64(R4, imm(Number(UpdateFlag.noexist))),
    call("map_update_elem"),
    // Another CPU may have added the key first: that is not a loss.
    jmp("JEQ", R0, imm(0), retry),
    // 32-bit: map operations return an int, which kernels before 6.4 leave zero-extended.
    jmp32("JEQ", R0, imm(-EEXIST), retry),
  );
  b.increment(ctx.counters, plan.lostCounter);
  b.emit(ja(done)).mark(retry);
  lookup();
  b.emit(jmp("JEQ", R0, imm(0), done)).mark(have);
  emitApply(b, plan, valueAt);
  b.mark(done);
}

/** Applies the value at R7 + `valueAt` to this CPU's value at R0. */
function emitApply(b: ProgramBuilder, plan: AggregationPlan, valueAt: number): void {
  const bump = (off: number) =>
    b.emit(ldx("DW", R2, R0, off), alu64("ADD", R2, imm(1)), stx("DW", R0, off, R2));
  switch (plan.kind) {
    case "count":
      bump(0);
      return;
    case "sum":
      b.emit(ldx("DW", R1, R7, valueAt), ldx("DW", R2, R0, 0), alu64("ADD", R2, R1));
      b.emit(stx("DW", R0, 0, R2));
      return;
    case "hist":
    case "lhist":
      if (plan.stats) emitStats(b, valueAt);
      b.emit(ldx("DW", R1, R7, valueAt));
      if (plan.kind === "hist") emitLog2Slot(b, plan.value!.type);
      else emitLinearSlot(b, plan.range!);
      b.emit(alu64("LSH", R2, imm(3)), alu64("ADD", R0, R2));
      bump(slotsAt(plan));
      return;
    default:
      emitStats(b, valueAt);
  }
}

/**
 * Adds the value at R7 + `valueAt` to {count, sum, min, max} at R0 + 0..31 (R0 kept).
 * Clobbers R1-R3.
 */
function emitStats(b: ProgramBuilder, valueAt: number): void {
  const first = b.fresh("first");
  const notLower = b.fresh("not_lower");
  const counted = b.fresh("counted");
  b.emit(
    ldx("DW", R1, R7, valueAt),
    ldx("DW", R2, R0, 8),
    alu64("ADD", R2, R1),
    stx("DW", R0, 8, R2),
    ldx("DW", R2, R0, 0),
    jmp("JEQ", R2, imm(0), first),
    ldx("DW", R3, R0, 16),
    jmp("JSGE", R1, R3, notLower),
    stx("DW", R0, 16, R1),
  ).mark(notLower);
  b.emit(
    ldx("DW", R3, R0, 24),
    jmp("JSLE", R1, R3, counted),
    stx("DW", R0, 24, R1),
    ja(counted),
  ).mark(first);
  b.emit(stx("DW", R0, 16, R1), stx("DW", R0, 24, R1)).mark(counted);
  b.emit(ldx("DW", R2, R0, 0), alu64("ADD", R2, imm(1)), stx("DW", R0, 0, R2));
}

/** R2 = log2 slot of R1 (see `log2Slot`), clamped for the verifier. Clobbers R3, R4. */
function emitLog2Slot(b: ProgramBuilder, t: ValueType): void {
  const done = b.fresh("slot");
  const signed = !(t.kind === "int" && t.bigint && !t.signed);
  b.emit(mov64(R2, imm(0)));
  if (signed) b.emit(jmp("JSLT", R1, imm(0), done));
  b.emit(mov64(R2, imm(1)), jmp("JEQ", R1, imm(0), done), mov64(R2, imm(2)), mov64(R3, R1));
  for (const shift of [32, 16, 8, 4, 2, 1]) {
    const skip = b.fresh("log2");
    b.emit(
      mov64(R4, R3),
      alu64("RSH", R4, imm(shift)),
      jmp("JEQ", R4, imm(0), skip),
      mov64(R3, R4),
      alu64("ADD", R2, imm(shift)),
    ).mark(skip);
  }
  b.mark(done).emit(...clamp(LOG2_SLOTS - 1, b.fresh("clamped")));
}

/** R2 = linear slot of R1 (see `linearSlot`), clamped for the verifier. */
function emitLinearSlot(b: ProgramBuilder, r: LinearRange): void {
  const last = linearSlots(r) - 1;
  const done = b.fresh("slot");
  b.emit(
    mov64(R2, imm(0)),
    jmp("JSLT", R1, imm(r.min), done),
    mov64(R2, imm(last)),
    jmp("JSGE", R1, imm(r.max), done),
    mov64(R2, R1),
    alu64("SUB", R2, imm(r.min)),
    alu64("DIV", R2, imm(r.step)),
    alu64("ADD", R2, imm(1)),
  );
  b.mark(done).emit(...clamp(last, b.fresh("clamped")));
}

function clamp(max: number, ok: string) {
  return [jmp("JLE", R2, imm(max), ok), mov64(R2, imm(max)), { label: ok }];
}

function decodeKey(view: DataView, parts: readonly Expr[], from = 0): KeyPart[] {
  let pos = from;
  return parts.map((p) => {
    const at = pos;
    pos += partSize(p.type);
    if (p.type.kind === "string") return readCString(view, at, p.type.size);
    if (p.type.kind === "int" && p.type.bigint) {
      return p.type.signed ? view.getBigInt64(at, true) : view.getBigUint64(at, true);
    }
    return word(view, at);
  });
}

/** The value of `bytes` bytes at `base` of `view`, each CPU's `stride` bytes, merged. */
function mergeValue(
  plan: AggregationPlan,
  view: DataView,
  base: number,
  bytes: number,
  stride: number,
): AggregationValue {
  const cpus = bytes / stride;
  switch (plan.kind) {
    case "count":
    case "sum":
      return { kind: plan.kind, value: total(view, base, cpus, stride, 0) };
    case "hist":
    case "lhist": {
      const slots = plan.kind === "hist" ? LOG2_SLOTS : linearSlots(plan.range!);
      const buckets = [];
      let count = 0;
      for (let s = 0; s < slots; s++) {
        const n = total(view, base, cpus, stride, slotsAt(plan) + 8 * s);
        count += n;
        buckets.push(plan.kind === "hist" ? log2Bucket(s, n) : linearBucket(s, n, plan.range!));
      }
      const stats = plan.stats ? mergeStats(view, base, cpus, stride) : undefined;
      return { kind: plan.kind, buckets, count, stats };
    }
    default: {
      const s = mergeStats(view, base, cpus, stride);
      if (plan.kind === "stats") return { kind: "stats", value: s };
      return { kind: plan.kind, value: s[plan.kind] };
    }
  }
}

/**
 * A signed 64-bit word as a number, from two 32-bit halves: a scrape of 10,000 keys reads
 * tens of thousands of words, and a BigInt each was most of its garbage.
 */
function word(view: DataView, at: number): number {
  return view.getInt32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
}

/** The word at `off` of each CPU's value, summed. */
function total(view: DataView, base: number, cpus: number, stride: number, off: number): number {
  let sum = 0;
  for (let c = 0; c < cpus; c++) sum += word(view, base + c * stride + off);
  return sum;
}

/** count, sum, min and max of each CPU's value merged. */
function mergeStats(view: DataView, base: number, cpus: number, stride: number): Stats {
  let min = Infinity;
  let max = -Infinity;
  for (let c = 0; c < cpus; c++) {
    const at = base + c * stride;
    if (word(view, at) === 0) continue;
    min = Math.min(min, word(view, at + 16));
    max = Math.max(max, word(view, at + 24));
  }
  const count = total(view, base, cpus, stride, 0);
  const sum = total(view, base, cpus, stride, 8);
  return { count, sum, min, max, avg: count ? Math.trunc(sum / count) : 0 };
}

/** Reads an aggregation's map, merging the CPUs' values. */
export class AggregationReader {
  readonly #map: BpfMap;
  readonly #plan: AggregationPlan;
  readonly #stride: number;
  /** An array's per-CPU words when it was last cleared. */
  #cleared: BigInt64Array | undefined;

  constructor(map: BpfMap, plan: AggregationPlan) {
    this.#map = map;
    this.#plan = plan;
    this.#stride = Math.ceil(valueSize(plan) / 8) * 8;
  }

  /** Every key with its value; with `clear`, each key is emptied as it is read. */
  read(clear = false): AggregationRow[] {
    if (keptInArray(this.#plan)) return this.#readArray(clear);
    // Decoded where the batch holds them: a view per entry was most of a scrape's garbage.
    const { keySize } = this.#map.spec;
    const valueBytes = this.#map.valueBytes;
    const rows: AggregationRow[] = [];
    for (const b of this.#map.batches(256, clear)) {
      const keys = new DataView(b.keys.buffer);
      const values = new DataView(b.values.buffer);
      for (let i = 0; i < b.count; i++) {
        rows.push({
          key: decodeKey(keys, this.#plan.keys, i * keySize),
          value: mergeValue(this.#plan, values, i * valueBytes, valueBytes, this.#stride),
        });
      }
    }
    return rows;
  }

  #readArray(clear: boolean): AggregationRow[] {
    const raw = this.#map.lookup(new Uint8Array(4))!;
    const words = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
    const since = new BigInt64Array(words.length);
    words.forEach((w, i) => since[i] = w - (this.#cleared?.[i] ?? 0n));
    if (clear) this.#cleared = words;
    if (since.every((w) => w === 0n)) return [];
    const value = mergeValue(
      this.#plan,
      new DataView(since.buffer),
      0,
      raw.byteLength,
      this.#stride,
    );
    return [{ key: [], value }];
  }
}
