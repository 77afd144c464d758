/**
 * Where a request's issue time waits for its completion: a slot table keyed by the request's
 * address (see `slot_table.ts`), so that the common case is an array slot claimed with a
 * compare-and-exchange, not a hash update and delete per request. A request issued again
 * before completing (requeued) keeps its slot, with the later time.
 *
 * @module
 */
import { alu64, ja, ldx, mov64, R1, R10, R2, R6, R7, R9, st, stx } from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { emitPut, emitTake, type SlotTable, slotTable } from "../../codegen/slot_table.ts";
import type { SiteContext } from "../provider.ts";

/** Slots: a power of two, well above the requests in flight on most machines. */
export const SLOTS = 4096;

const NAME = "io_start_rq";
/** The spill holds as many as can be in flight. */
const LAYOUT = { keySize: 8, valueSize: 8, count: SLOTS, spilled: 65536 };

/** The table of issue times, by the names its programs refer to ({@link startMaps}). */
export const START_MAPS: SlotTable = slotTable((spec) => spec.name, NAME, LAYOUT);

/** Declares the maps where requests' issue times are kept; returns {@link START_MAPS}. */
export function startMaps(ctx: Pick<SiteContext, "map">): SlotTable {
  return slotTable((spec) => ctx.map(spec), NAME, LAYOUT);
}

/** `stack[key] = the request` (context word 0). */
function requestKey(b: ProgramBuilder): number {
  const key = b.alloc(8);
  b.emit(ldx("DW", R1, R6, 0), stx("DW", R10, key, R1));
  return key;
}

/** At the request's issue (R6 the context, R9 the time): keeps its issue time. */
export function emitSaveStart(b: ProgramBuilder, table: SlotTable): void {
  const key = requestKey(b);
  const time = b.alloc(8);
  b.emit(stx("DW", R10, time, R9));
  emitPut(b, table, key, time);
}

/**
 * At the request's completion (R6 the context, R9 the time): writes the time since its issue
 * at R7 + `dst`, or -1 where its issue was not seen, and forgets the issue.
 */
export function emitLatency(b: ProgramBuilder, table: SlotTable, dst: number): void {
  const none = b.fresh("no_start");
  const done = b.fresh("latency_known");
  emitTake(b, table, requestKey(b), (base, off) => {
    b.emit(ldx("DW", R2, base, off), mov64(R1, R9), alu64("SUB", R1, R2), stx("DW", R7, dst, R1));
  }, none);
  b.emit(ja(done)).mark(none).emit(st("DW", R7, dst, -1)).mark(done);
}
