/**
 * Items in flight (block requests, AIO iocbs) from the program that starts them to the one that
 * ends them: each in a slot of an array chosen by a hash of its key and claimed with a
 * compare-and-exchange, or, where another item holds that slot, in a hash map. A slot is found
 * without a helper call and costs no allocation or lock; a hash map costs an update, a lookup
 * and a delete per item. The hash map keeps every item whatever the collisions.
 *
 * A slot is {tag, key, value}: the tag, a nonzero hash of the key, is what is claimed, and the
 * key is compared whole, so that two keys with one tag never share a slot. A slot is released
 * when its item is taken; one whose item is never taken (its end never seen) stays claimed until
 * the same key is put again or the session removes it ({@link tableItems}), and the keys hashed
 * to it meanwhile use the hash map.
 *
 * @module
 */
import {
  alu32,
  alu64,
  atomicCmpxchg,
  call,
  imm,
  ja,
  jmp,
  ldImm64,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R4,
  type Reg,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import type { BpfMap, MapSpec } from "../../bpf/map.ts";
import type { ProgramBuilder } from "./builder.ts";

/** A table's maps and layout. */
export interface SlotTable {
  /** Array of {tag, key, value}. */
  slots: string;
  /** Hash of key to value, for items whose slot another holds. */
  spilled: string;
  /** Slots: a power of two. */
  count: number;
  /** Bytes of a key and of a value: multiples of 8. */
  keySize: number;
  valueSize: number;
}

/** Where a slot's key and value begin. */
const KEY_AT = 8;

/** The multiplier of the key's hash (2^64 / golden ratio). */
const MIX = 0x9e37_79b9_7f4a_7c15n;

/**
 * Declares a table named `name` (its maps are `NAME_slots` and `NAME`) of `count` slots and
 * room for `spilled` more items.
 */
export function slotTable(
  declare: (spec: MapSpec) => string,
  name: string,
  layout: { keySize: number; valueSize: number; count: number; spilled: number },
): SlotTable {
  const { keySize, valueSize, count } = layout;
  if (keySize % 8 || valueSize % 8 || count < 2 || count & (count - 1)) {
    throw new RangeError(`slot table '${name}': sizes in words, a power-of-two count from 2`);
  }
  return {
    slots: declare({
      name: `${name}_slots`,
      type: "array",
      keySize: 4,
      valueSize: KEY_AT + keySize + valueSize,
      maxEntries: count,
    }),
    spilled: declare({
      name,
      type: "hash",
      keySize,
      valueSize,
      maxEntries: layout.spilled,
    }),
    count,
    keySize,
    valueSize,
  };
}

/**
 * The hash of a key's words, as the programs compute it: of each word's low 32 bits, which is
 * what the verifier lets a privileged program read of a kernel pointer as a number (a 32-bit
 * move). Keys differing only above bit 31 share a slot's tag, and their whole keys tell them
 * apart.
 */
function mix(words: readonly bigint[]): bigint {
  let h = 0n;
  for (const w of words) h = BigInt.asUintN(64, (h ^ BigInt.asUintN(32, w)) * MIX);
  return h;
}

/** The slot a key's words hash to, in a table of `count` slots. */
export function slotOf(words: readonly bigint[], count: number): number {
  return Number(mix(words) >> BigInt(64 - Math.log2(count)));
}

/** The tag a key's words claim a slot with: nonzero. */
export function tagOf(words: readonly bigint[]): bigint {
  return mix(words) | 1n;
}

/**
 * `R0 =` the slot of the key at R10 + `keyAt`, its tag kept at R10 + `tagAt`; jumps to
 * `missing` where there is none (never: the index is in range). Clobbers R1-R5.
 */
function emitSlot(
  b: ProgramBuilder,
  t: SlotTable,
  keyAt: number,
  tagAt: number,
  missing: string,
): void {
  const index = b.alloc(8);
  b.emit(mov64(R0, imm(0)), ldImm64(R2, MIX));
  for (let w = 0; w < t.keySize; w += 8) {
    b.emit(ldx("DW", R1, R10, keyAt + w), alu32("MOV", R1, R1));
    b.emit(alu64("XOR", R0, R1), alu64("MUL", R0, R2));
  }
  b.emit(mov64(R1, R0), alu64("OR", R1, imm(1)), stx("DW", R10, tagAt, R1));
  b.emit(alu64("RSH", R0, imm(64 - Math.log2(t.count))), stx("DW", R10, index, R0));
  b.lookup(t.slots, index, missing);
}

/** Jumps to `other` unless the slot at `slot` holds the key at R10 + `keyAt`. Clobbers R3-R4. */
function emitSameKey(b: ProgramBuilder, t: SlotTable, slot: Reg, keyAt: number, other: string) {
  for (let w = 0; w < t.keySize; w += 8) {
    b.emit(ldx("DW", R3, slot, KEY_AT + w), ldx("DW", R4, R10, keyAt + w));
    b.emit(jmp("JNE", R3, R4, other));
  }
}

/** Counters a put counts in: an entry of a per-CPU counter array each. */
export interface PutCounters {
  /** A key put again before it was taken: its earlier value is gone. */
  replaced: readonly [string, number];
  /** A key the hash map had no room for. */
  lost: readonly [string, number];
}

/**
 * Puts the value at R10 + `valueAt` under the key at R10 + `keyAt`: in the key's slot where it
 * is free or the key's own, else in the hash map. Clobbers R0-R5.
 */
export function emitPut(
  b: ProgramBuilder,
  t: SlotTable,
  keyAt: number,
  valueAt: number,
  counters?: PutCounters,
): void {
  const tag = b.alloc(8);
  const at = b.alloc(8);
  const claimed = b.fresh("slot_claimed");
  const again = b.fresh("slot_again");
  const spill = b.fresh("slot_taken");
  const done = b.fresh("slot_put");
  emitSlot(b, t, keyAt, tag, spill);
  b.emit(stx("DW", R10, at, R0), ldx("DW", R1, R10, tag), mov64(R2, R0), mov64(R0, imm(0)));
  b.emit(atomicCmpxchg("DW", R2, 0, R1), jmp("JEQ", R0, imm(0), claimed));
  b.emit(jmp("JNE", R0, R1, spill));
  emitSameKey(b, t, R2, keyAt, spill);
  b.emit(ja(again));
  b.mark(claimed);
  for (let w = 0; w < t.keySize; w += 8) {
    b.emit(ldx("DW", R1, R10, keyAt + w), stx("DW", R2, KEY_AT + w, R1));
  }
  b.emit(ja(done)).mark(again);
  if (counters) b.increment(...counters.replaced).emit(ldx("DW", R2, R10, at));
  b.mark(done);
  for (let w = 0; w < t.valueSize; w += 8) {
    b.emit(ldx("DW", R1, R10, valueAt + w), stx("DW", R2, KEY_AT + t.keySize + w, R1));
  }
  const end = b.fresh("slot_end");
  b.emit(ja(end)).mark(spill);
  if (counters) b.insert(t.spilled, keyAt, valueAt, counters.replaced, counters.lost);
  else b.update(t.spilled, keyAt, valueAt);
  b.mark(end);
}

/**
 * Takes the item under the key at R10 + `keyAt`: `read(base, off)` reads its value at
 * `base + off` (and may clobber R1-R5, not `base`), then the item is gone; jumps to `missing`
 * where there is none. Clobbers R0-R5.
 */
export function emitTake(
  b: ProgramBuilder,
  t: SlotTable,
  keyAt: number,
  read: (base: Reg, off: number) => void,
  missing: string,
): void {
  const tag = b.alloc(8);
  const spill = b.fresh("not_in_slot");
  const done = b.fresh("slot_taken");
  emitSlot(b, t, keyAt, tag, spill);
  b.emit(ldx("DW", R1, R0, 0), ldx("DW", R2, R10, tag), jmp("JNE", R1, R2, spill));
  emitSameKey(b, t, R0, keyAt, spill);
  read(R0, KEY_AT + t.keySize);
  // Released only once read: from here the slot is the next item's.
  b.emit(st("DW", R0, 0, 0), ja(done)).mark(spill);
  b.lookup(t.spilled, keyAt, missing);
  read(R0, 0);
  b.emit(ldMap(R1, t.spilled)).stackPtr(R2, keyAt).emit(call("map_delete_elem"));
  b.mark(done);
}

/** An item of a table, read by the session: its key, and how to remove it. */
export interface TableItem {
  key: Uint8Array<ArrayBuffer>;
  remove(): void;
}

/** Every item in the table: claimed slots and the hash map's entries. */
export function tableItems(t: SlotTable, maps: ReadonlyMap<string, BpfMap>): TableItem[] {
  const slots = maps.get(t.slots)!;
  const spilled = maps.get(t.spilled)!;
  const items: TableItem[] = [];
  const stride = slots.valueBytes;
  for (const batch of slots.batches()) {
    const view = new DataView(batch.values.buffer);
    for (let i = 0; i < batch.count; i++) {
      if (view.getBigUint64(i * stride, true) === 0n) continue;
      const slot = batch.keys.slice(i * 4, i * 4 + 4);
      const start = i * stride + KEY_AT;
      items.push({
        key: batch.values.slice(start, start + t.keySize),
        remove: () => slots.update(slot, new Uint8Array(stride)),
      });
    }
  }
  for (const key of [...spilled.keys()]) items.push({ key, remove: () => spilled.delete(key) });
  return items;
}
