/**
 * Generates the programs that make a traced command's descendants traced too: on
 * `sched:sched_process_fork`, a child whose parent is in the pid set joins it; on
 * `sched:sched_process_exit`, an exiting task leaves it.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  type Item,
  jmp32,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R6,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { ProgramBuilder } from "./builder.ts";

/**
 * `childPidOffset`: offset of `child_pid` in the fork tracepoint's record. A child that cannot
 * join (the map is full) adds one to entry `lostCounter` of the per-CPU `counters` map.
 */
export function followProgram(
  pidsMap: string,
  childPidOffset: number,
  counters: string,
  lostCounter: number,
): Item[] {
  const b = new ProgramBuilder();
  const key = b.alloc(8);
  const value = b.alloc(8);
  // The fork tracepoint runs in the parent: its tgid decides.
  b.emit(
    mov64(R6, R1),
    call("get_current_pid_tgid"),
    alu64("RSH", R0, imm(32)),
    stx("W", R10, key, R0),
  );
  b.lookup(pidsMap, key, "out");
  b.emit(
    ldx("W", R0, R6, childPidOffset),
    stx("W", R10, key, R0),
    st("DW", R10, value, 1),
  );
  b.update(pidsMap, key, value);
  // 32-bit: map operations return an int, which kernels before 6.4 leave zero-extended.
  b.emit(jmp32("JSGE", R0, imm(0), "out"));
  b.increment(counters, lostCounter);
  return b.mark("out").ret().items;
}

/**
 * The program that takes a task out of the pid set when it exits (`sched:sched_process_exit`
 * runs in the exiting task): its pid can then be reused by a process the session must not
 * trace, and its slot serves another child.
 */
export function unfollowProgram(pidsMap: string): Item[] {
  const b = new ProgramBuilder();
  const key = b.alloc(8);
  b.emit(call("get_current_pid_tgid"), st("DW", R10, key, 0), stx("W", R10, key, R0));
  b.emit(ldMap(R1, pidsMap));
  b.stackPtr(R2, key);
  b.emit(call("map_delete_elem"));
  return b.ret().items;
}
