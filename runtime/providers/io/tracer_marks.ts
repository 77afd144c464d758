/**
 * The tracer's own I/O, marked where it is submitted so that system-wide tracing leaves it out
 * where it completes (often in a kernel worker). A mark is kept by the I/O's bio, only for I/O
 * of the tracer's processes, with a count of marks outstanding: while there is none, which is
 * nearly always, the completion of anyone else's I/O reads one word, and its submission no more.
 * While there are marks, a submission removes any left on its bio (one whose I/O was never seen
 * completing, such as a request another bio was merged in front of), so that no mark outlives
 * its I/O to leave another out.
 *
 * @module
 */
import {
  alu64,
  atomicAdd,
  call,
  imm,
  ja,
  jmp,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { UpdateFlag } from "../../../bpf/map.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import type { FilterSubject } from "../../codegen/probe_program.ts";
import type { SiteContext } from "../provider.ts";
import { type IoSource, loadBio } from "./source.ts";

/** The marks of one site and their count. */
export interface Marks {
  /** Hash of bio address to {0, pid_tgid of the marking process}. */
  map: string;
  /** One-entry array: the marks outstanding. */
  count: string;
}

/** Declares the maps of marks named `name`. */
export function tracerMarks(ctx: SiteContext, name: string): Marks {
  return {
    map: ctx.map({ name, type: "hash", keySize: 8, valueSize: 16, maxEntries: 1024 }),
    count: ctx.map({ name: `${name}_n`, type: "array", keySize: 4, valueSize: 8, maxEntries: 1 }),
  };
}

/** `R0 = the count of marks`, or a jump to `none` where it is 0. Clobbers R1-R5. */
function emitCount(b: ProgramBuilder, marks: Marks, none: string): void {
  const key = b.slot("marks count key");
  b.emit(st("W", R10, key, 0)).lookup(marks.count, key, none);
  b.emit(ldx("DW", R0, R0, 0), jmp("JEQ", R0, imm(0), none));
}

/** Adds `by` (1 or -1) to the count of marks. Clobbers R0-R5. */
function emitAdd(b: ProgramBuilder, marks: Marks, by: 1 | -1): void {
  const key = b.slot("marks count key");
  const done = b.fresh("counted");
  b.emit(st("W", R10, key, 0)).lookup(marks.count, key, done);
  b.emit(mov64(R1, imm(by)), atomicAdd("DW", R0, 0, R1)).mark(done);
}

/** `stack[key] = the I/O's bio`, from `src`. Clobbers R0-R5. */
function bioKey(b: ProgramBuilder, src: IoSource, key: number): void {
  loadBio(b, src, R0);
  b.emit(stx("DW", R10, key, R0));
}

/**
 * Where I/O is submitted, in its submitter's context (R6 the context, `at` how to read its
 * bio): marks the I/O of the processes in `tracer`, and clears a stale mark on anyone else's.
 * Clobbers R0-R5.
 */
export function emitMark(
  b: ProgramBuilder,
  marks: Marks,
  at: IoSource,
  tracer: readonly number[],
): void {
  const key = b.alloc(8);
  const value = b.alloc(16);
  const mark = b.fresh("tracer_io");
  const done = b.fresh("marked");
  b.emit(call("get_current_pid_tgid"), st("DW", R10, value, 0), stx("DW", R10, value + 8, R0));
  b.emit(alu64("RSH", R0, imm(32)));
  for (const tgid of tracer) b.emit(jmp("JEQ", R0, imm(tgid), mark));
  emitCount(b, marks, done);
  bioKey(b, at, key);
  emitDelete(b, marks.map, key);
  b.emit(jmp("JNE", R0, imm(0), done));
  emitAdd(b, marks, -1);
  b.emit(ja(done)).mark(mark);
  bioKey(b, at, key);
  b.update(marks.map, key, value, Number(UpdateFlag.noexist));
  b.emit(jmp("JNE", R0, imm(0), done));
  emitAdd(b, marks, 1);
  b.mark(done);
}

/** `R0 = map_delete_elem(map, &stack[key])`: 0 where there was an entry. */
function emitDelete(b: ProgramBuilder, map: string, key: number): void {
  b.emit(ldMap(R1, map)).stackPtr(R2, key).emit(call("map_delete_elem"));
}

/**
 * The filter subject from the marks: the marking process's pid_tgid, 0 for unmarked I/O. The
 * site's look is the last at its marks: it removes the one it finds. Only the tracer's
 * exclusion asks, so no comm is kept.
 */
export function markSubject(src: IoSource, marks: Marks): FilterSubject {
  return {
    pidTgid: (b) => {
      const key = b.alloc(8);
      const tgid = b.alloc(8);
      const done = b.fresh("unmarked");
      b.emit(st("DW", R10, tgid, 0));
      emitCount(b, marks, done);
      bioKey(b, src, key);
      b.lookup(marks.map, key, done);
      b.emit(ldx("DW", R0, R0, 8), stx("DW", R10, tgid, R0));
      emitDelete(b, marks.map, key);
      b.emit(jmp("JNE", R0, imm(0), done));
      emitAdd(b, marks, -1);
      b.mark(done).emit(ldx("DW", R0, R10, tgid));
    },
    comm: (b, at) => void b.emit(st("DW", R10, at, 0), st("DW", R10, at + 8, 0)),
  };
}
