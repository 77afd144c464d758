/**
 * A system call's arguments read at its return from the user registers its entry saved
 * (`struct pt_regs` at the top of the task's kernel stack): the syscall reads them from there
 * and leaves them as they were, so a return program needs no entry program saving them. x86_64
 * passes them in rdi, rsi, rdx, r10, r8 and r9; syscall tracepoints see 64-bit calls only.
 * Uses bpf_get_current_task_btf (5.11) and bpf_task_pt_regs (5.15), whose result loads directly.
 *
 * @module
 */
import { call, ldx, mov64, R0, R1, type Reg } from "../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "./builder.ts";
import { memberOffset } from "./struct_read.ts";

const ARG_REGISTERS = ["di", "si", "dx", "r10", "r8", "r9"] as const;

/** `R0 = the current task's saved user registers` (a BTF-typed `struct pt_regs *`). */
export function emitSyscallRegs(b: ProgramBuilder): void {
  b.emit(call("get_current_task_btf"), mov64(R1, R0), call("task_pt_regs"));
}

/** `dst = argument i (0-5) of the current syscall`, from the registers at `regs`. */
export function loadSyscallArg(b: ProgramBuilder, regs: Reg, i: number, dst: Reg): void {
  b.emit(ldx("DW", dst, regs, memberOffset("pt_regs", ARG_REGISTERS[i])));
}
