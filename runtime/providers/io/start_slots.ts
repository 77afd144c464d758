/**
 * Where a request's issue time waits for its completion: in a slot of an array chosen by the
 * request's address and claimed with a compare-and-exchange, or, where another request holds
 * that slot, in a hash map. A slot is found without a helper call and costs no allocation; the
 * hash map keeps every request timed whatever the collisions.
 *
 * The slot is chosen from the low 32 bits of the address, which the verifier hands a privileged
 * program as a number (a 32-bit move of a pointer); the slot keeps the whole address, which is
 * what matches. A slot is released at the completion; one whose completion is never seen (the
 * tracer's own I/O, left out before it is timed) stays claimed until its request is issued
 * again, and the requests hashed to it meanwhile use the map.
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
  R6,
  R7,
  R9,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import type { SiteContext } from "../provider.ts";

/** Slots: a power of two, well above the requests in flight on most machines. */
export const SLOTS = 4096;
/** Requests whose slot was taken: as many as can be in flight. */
const SPILLED = 65536;

/** The two maps of requests' issue times. */
export interface StartMaps {
  /** Array of {request address, issue time}. */
  slots: string;
  /** Hash of request address to issue time, for requests whose slot was taken. */
  spilled: string;
}

/** The maps' names, which the programs refer to (see {@link startMaps}). */
export const START_MAPS: StartMaps = { slots: "io_start_slots", spilled: "io_start_rq" };

/** Declares the maps where requests' issue times are kept; returns {@link START_MAPS}. */
export function startMaps(ctx: Pick<SiteContext, "map">): StartMaps {
  return {
    slots: ctx.map({
      name: START_MAPS.slots,
      type: "array",
      keySize: 4,
      valueSize: 16,
      maxEntries: SLOTS,
    }),
    spilled: ctx.map({
      name: START_MAPS.spilled,
      type: "hash",
      keySize: 8,
      valueSize: 8,
      maxEntries: SPILLED,
    }),
  };
}

/**
 * `R0 = the slot of the request at context word 0`, `R1 = the request`; jumps to `missing`
 * where there is no slot (never: the index is masked). Clobbers R2-R5.
 */
function emitSlot(b: ProgramBuilder, maps: StartMaps, missing: string): void {
  const key = b.alloc(8);
  b.emit(ldx("DW", R1, R6, 0), alu32("MOV", R2, R1), alu64("RSH", R2, imm(6)));
  b.emit(ldImm64(R3, 0x9e3779b1n), alu64("MUL", R2, R3), alu64("RSH", R2, imm(20)));
  b.emit(alu64("AND", R2, imm(SLOTS - 1)), stx("DW", R10, key, R2));
  b.lookup(maps.slots, key, missing);
  b.emit(ldx("DW", R1, R6, 0));
}

/** `stack[key] = the request`; `R1 = map`, `R2 = R10 + key`: a helper's first arguments. */
function requestKey(b: ProgramBuilder, map: string, key: number): void {
  b.emit(ldx("DW", R1, R6, 0), stx("DW", R10, key, R1), ldMap(R1, map)).stackPtr(R2, key);
}

/** At the request's issue (R6 the context, R9 the time): keeps its issue time. */
export function emitSaveStart(b: ProgramBuilder, maps: StartMaps): void {
  const claimed = b.fresh("slot_claimed");
  const spill = b.fresh("slot_taken");
  const done = b.fresh("start_kept");
  emitSlot(b, maps, spill);
  // A free slot (0) becomes this request's; one it holds already (issued again) stays.
  b.emit(mov64(R2, R0), mov64(R0, imm(0)), atomicCmpxchg("DW", R2, 0, R1));
  b.emit(jmp("JEQ", R0, imm(0), claimed), jmp("JNE", R0, R1, spill));
  b.mark(claimed).emit(stx("DW", R2, 8, R9), ja(done)).mark(spill);
  const key = b.alloc(8);
  const value = b.alloc(8);
  b.emit(stx("DW", R10, value, R9));
  requestKey(b, maps.spilled, key);
  b.stackPtr(R3, value).emit(mov64(4, imm(0)), call("map_update_elem")).mark(done);
}

/**
 * At the request's completion (R6 the context, R9 the time): writes the time since its issue
 * at R7 + `dst`, or -1 where its issue was not seen, and forgets the issue.
 */
export function emitLatency(b: ProgramBuilder, maps: StartMaps, dst: number): void {
  const spill = b.fresh("not_in_slot");
  const none = b.fresh("no_start");
  const done = b.fresh("latency_known");
  emitSlot(b, maps, spill);
  b.emit(ldx("DW", R2, R0, 0), jmp("JNE", R2, R1, spill));
  // The time is read before the slot is released to the next request.
  b.emit(ldx("DW", R2, R0, 8), st("DW", R0, 0, 0));
  b.emit(mov64(R1, R9), alu64("SUB", R1, R2), stx("DW", R7, dst, R1), ja(done)).mark(spill);
  const key = b.alloc(8);
  requestKey(b, maps.spilled, key);
  b.emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), none));
  b.emit(ldx("DW", R2, R0, 0), mov64(R1, R9), alu64("SUB", R1, R2), stx("DW", R7, dst, R1));
  requestKey(b, maps.spilled, key);
  b.emit(call("map_delete_elem"), ja(done));
  b.mark(none).emit(st("DW", R7, dst, -1)).mark(done);
}
