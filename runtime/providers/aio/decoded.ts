/**
 * The contents behind the AIO syscalls' pointers, copied from user memory in the kernel when
 * asked (`{ decode: true }`) and decoded in JavaScript the way strace shows them: the iocbs
 * io_submit passes, the io_events io_getevents and io_pgetevents reap, their timeout and
 * io_pgetevents' signal set. At most {@link MAX_DECODED} iocbs or events per call.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  jmp,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R6,
  R7,
  type Reg,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import type { EventField } from "../../codegen/fields.ts";
import { emitSyscallRegs, loadSyscallArg } from "../../codegen/syscall_regs.ts";
import { decodeEvents, decodeIocbs, decodeSigset, decodeTimespec, IO_EVENT, IOCB } from "./abi.ts";

/** Most iocbs or io_events copied per call. */
export const MAX_DECODED = 8;
const RET = 16; // sys_exit_*: long ret

/**
 * Where a syscall's arguments are: the context at entry, the task's saved registers at return
 * (see `syscall_regs.ts`).
 */
export type ArgSource = "ctx" | "regs";

/** `reg = argument i`; from the registers, clobbers R0-R5. */
function loadArg(b: ProgramBuilder, from: ArgSource, i: number, reg: Reg): void {
  if (from === "ctx") return void b.emit(ldx("DW", reg, R6, 16 + 8 * i));
  emitSyscallRegs(b);
  loadSyscallArg(b, R0, i, reg);
}

/** `probe_read_user(R7 + dst, size, R3)`. */
function readUser(b: ProgramBuilder, dst: number, size: number): void {
  b.emit(mov64(R1, R7), alu64("ADD", R1, imm(dst)), mov64(R2, imm(size)));
  b.emit(call("probe_read_user"));
}

/** A field filled by `emit` after its first word is zeroed. */
function decodedField(
  name: string,
  size: number,
  emit: (b: ProgramBuilder, dst: number) => void,
  transform: (bytes: Uint8Array) => unknown,
): EventField {
  return {
    path: [name],
    decoding: { type: "bytes", size },
    size,
    capture: (b, dst) => {
      b.emit(st("DW", R7, dst, 0));
      emit(b, dst);
    },
    transform: (bytes) => transform(bytes as Uint8Array),
  };
}

/** Stores `min(max(R0, 0), MAX_DECODED)` as the u32 count at R7 + `dst`; leaves it in R0. */
function storeCount(b: ProgramBuilder, dst: number): void {
  const low = b.fresh("count_low");
  const high = b.fresh("count_high");
  b.emit(jmp("JSGE", R0, imm(0), low), mov64(R0, imm(0))).mark(low);
  b.emit(jmp("JSLE", R0, imm(MAX_DECODED), high), mov64(R0, imm(MAX_DECODED))).mark(high);
  b.emit(stx("W", R7, dst, R0));
}

/** Emits `body(i)` for i < the count at R7 + `dst` (a constant-bounded, unrolled loop). */
function each(b: ProgramBuilder, dst: number, body: (i: number) => void): void {
  const done = b.fresh("decoded");
  for (let i = 0; i < MAX_DECODED; i++) {
    b.emit(ldx("W", R0, R7, dst), jmp("JLE", R0, imm(i), done));
    body(i);
  }
  b.mark(done);
}

/** io_submit's iocbs: `nr` of them at entry, as many as were submitted at return. */
export function iocbsField(from: ArgSource): EventField {
  const slot = 8 + IOCB.size;
  return decodedField("iocbs", 8 + MAX_DECODED * slot, (b, dst) => {
    if (from === "ctx") loadArg(b, from, 1, R0);
    else b.emit(ldx("DW", R0, R6, RET));
    storeCount(b, dst);
    b.emit(call("get_current_pid_tgid"), alu64("RSH", R0, imm(32)), stx("W", R7, dst + 4, R0));
    each(b, dst, (i) => {
      const at = dst + 8 + i * slot;
      loadArg(b, from, 2, R3);
      b.emit(alu64("ADD", R3, imm(8 * i)));
      readUser(b, at, 8);
      b.emit(ldx("DW", R3, R7, at));
      readUser(b, at + 8, IOCB.size);
    });
  }, decodeIocbs);
}

/** The io_events io_getevents or io_pgetevents reaped (return only). */
export function eventsField(): EventField {
  return decodedField("events", 8 + MAX_DECODED * IO_EVENT.size, (b, dst) => {
    b.emit(ldx("DW", R0, R6, RET));
    storeCount(b, dst);
    each(b, dst, (i) => {
      loadArg(b, "regs", 3, R3);
      b.emit(alu64("ADD", R3, imm(IO_EVENT.size * i)));
      readUser(b, dst + 8 + IO_EVENT.size * i, IO_EVENT.size);
    });
  }, decodeEvents);
}

/** The `timeout` timespec of io_getevents and io_pgetevents (argument 4). */
export function timeoutField(from: ArgSource): EventField {
  return decodedField("timeout", 24, (b, dst) => {
    const none = b.fresh("no_timeout");
    loadArg(b, from, 4, R3);
    b.emit(jmp("JEQ", R3, imm(0), none), st("DW", R7, dst, 1));
    readUser(b, dst + 8, 16);
    b.mark(none);
  }, decodeTimespec);
}

/** io_pgetevents' `usig`: the signal mask it points to and its size (argument 5). */
export function usigField(from: ArgSource): EventField {
  return decodedField("usig", 24, (b, dst) => {
    const none = b.fresh("no_usig");
    const sigset = b.alloc(16);
    loadArg(b, from, 5, R3);
    b.emit(jmp("JEQ", R3, imm(0), none), st("DW", R7, dst, 1));
    b.emit(st("DW", R10, sigset, 0), st("DW", R10, sigset + 8, 0));
    b.stackPtr(R1, sigset).emit(mov64(R2, imm(16)), call("probe_read_user"));
    b.emit(ldx("DW", R0, R10, sigset + 8), stx("DW", R7, dst + 8, R0));
    b.emit(ldx("DW", R3, R10, sigset));
    readUser(b, dst + 16, 8);
    b.mark(none);
  }, decodeSigset);
}
