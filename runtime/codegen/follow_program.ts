/**
 * Generates the program that makes a traced command's descendants traced too: on
 * `sched:sched_process_fork`, a child whose parent is in the pid set joins it.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  type Item,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R6,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { ProgramBuilder } from "./builder.ts";

/** `childPidOffset`: offset of `child_pid` in the fork tracepoint's record. */
export function followProgram(pidsMap: string, childPidOffset: number): Item[] {
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
  return b.mark("out").ret().items;
}
