/**
 * The raw tracepoint `sched_switch(preempt, prev, next)` as providers read it: the task that
 * leaves the CPU (`prev`, the current task) and the one that gets it (`next`, whose pid, comm
 * and process filter must come from its `task_struct`). R6 holds the context.
 *
 * @module
 */
import { alu64, imm, ldx, R0, R1, R10, R2, R6, R7, stx } from "../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../codegen/builder.ts";
import { type EventField, field } from "../codegen/fields.ts";
import type { FilterSubject } from "../codegen/probe_program.ts";
import { readMember, readMemberBytes } from "../codegen/struct_read.ts";

/** Context offsets of the arguments: whether prev was preempted, prev, next. */
export const SWITCH = { preempt: 0, prev: 8, next: 16 } as const;

/** `R0 = tgid << 32 | pid` of the task switched in: its `pid_tgid`. */
export function nextPidTgid(b: ProgramBuilder): void {
  const tid = b.alloc(8);
  b.emit(ldx("DW", R1, R6, SWITCH.next));
  readMember(b, R1, "task_struct", "pid", R0);
  b.emit(stx("DW", R10, tid, R0), ldx("DW", R1, R6, SWITCH.next));
  readMember(b, R1, "task_struct", "tgid", R0);
  b.emit(alu64("LSH", R0, imm(32)), ldx("DW", R2, R10, tid), alu64("OR", R0, R2));
}

/** pid, tid and comm of the task switched in. */
export function nextTaskFields(): EventField[] {
  const member = (path: string) => (b: ProgramBuilder, dst: number) => {
    b.emit(ldx("DW", R1, R6, SWITCH.next));
    readMember(b, R1, "task_struct", path, R0);
    b.emit(stx("W", R7, dst, R0));
  };
  const u32 = { type: "int", size: 4, signed: false } as const;
  return [
    field(["pid"], u32, member("tgid")),
    field(["tid"], u32, member("pid")),
    field(["comm"], { type: "string", size: 16 }, (b, dst) => {
      b.emit(ldx("DW", R1, R6, SWITCH.next));
      readMemberBytes(b, R1, "task_struct", "comm", R7, dst, 16);
    }),
  ];
}

/** The process filter's subject at a switch-in: the task that gets the CPU. */
export const NEXT_TASK: FilterSubject = {
  pidTgid: nextPidTgid,
  comm: (b, at) => {
    b.emit(ldx("DW", R1, R6, SWITCH.next));
    readMemberBytes(b, R1, "task_struct", "comm", R10, at, 16);
  },
};
