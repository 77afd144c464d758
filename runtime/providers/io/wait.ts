/**
 * io:wait-start and io:wait-done from the scheduler: a thread that blocks in `io_schedule()`
 * is switched out with its `in_iowait` bit set (wait-start) and switched back in with it still
 * set (wait-done). Both come from the raw tracepoint sched_switch(preempt, prev, next, state).
 * wait-done fires only after a wait-start seen in the same thread, and carries `waitNs`; its
 * pid, tid and comm are those of the thread that resumes (the one switched in), not of the
 * task that was running.
 *
 * The I/O waited for is not known at this level: it is recorded per waiting thread when
 * queued, and wait events say how it was associated, `exact` or `inferred` (see `waited.ts`).
 * Asynchronous I/O is never waited on, so it never appears.
 *
 * @module
 */
import { NEXT_TASK, nextPidTgid, nextTaskFields, SWITCH } from "../sched_switch.ts";
import { call, imm, jmp, ldx, R0, R1, R6 } from "../../../bpf/asm/mod.ts";
import { attachRawTracepoint } from "../../../bpf/link.ts";
import type { Program } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { field, headerFields, latencyFromState } from "../../codegen/fields.ts";
import { probeProgram, stateValueSize, type ThreadState } from "../../codegen/probe_program.ts";
import { readMember } from "../../codegen/struct_read.ts";
import type { ProbeSite, SiteContext } from "../provider.ts";
import { fillMounts, MOUNTS_MAP } from "./fileinfo.ts";
import {
  emitWaited,
  fillWaited,
  lastSubmitRecorders,
  WAITED_WORDS,
  waitedFields,
  waitedFromState,
} from "./waited.ts";

const PREV = SWITCH.prev;
const NEXT = SWITCH.next;
const WAIT_MAP = "io_wait";
/**
 * Wait-starts no wait-done will pair: the wait map refused them (full), or the thread's earlier
 * wait was never seen to end (its switch-in did not reach the sched_switch programs; seen
 * about once in 40,000 waits of 8 fio threads on 6.18), whose state this start replaces.
 */
export const WAIT_UNPAIRED = "io.wait_unpaired";

/** Skips unless the task at context offset `task` is in an I/O wait (and not preempted). */
function inIowait(task: number, skip: string, b: ProgramBuilder): void {
  if (task === PREV) b.emit(ldx("DW", R0, R6, 0), jmp("JNE", R0, imm(0), skip));
  b.emit(ldx("DW", R1, R6, task));
  readMember(b, R1, "task_struct", "in_iowait", R0);
  b.emit(jmp("JEQ", R0, imm(0), skip));
}

/** Sets up io:wait-start or io:wait-done. */
export function waitSite(side: "start" | "done", ctx: SiteContext): ProbeSite {
  const name = `io:wait-${side}`;
  const attach = (p: Program) => attachRawTracepoint(p, "sched_switch");
  const constants = [{ path: ["probe"], constant: name }];
  ctx.map(MOUNTS_MAP);
  const recorders = lastSubmitRecorders(ctx);
  if (side === "start") {
    const current = (b: ProgramBuilder) => b.emit(call("get_current_pid_tgid"));
    return {
      name,
      fields: [...headerFields(), ...waitedFields((b) => emitWaited(b, current))],
      constants,
      prepare: fillMounts,
      hook: {
        name: "io_wait_start",
        type: "raw_tracepoint",
        attach,
        guard: (b, skip) => inIowait(PREV, skip, b),
      },
      companions: recorders,
    };
  }
  const map = ctx.map({
    name: WAIT_MAP,
    type: "hash",
    keySize: 8,
    valueSize: stateValueSize(WAITED_WORDS),
    maxEntries: 16384,
  });
  // The wait-start keeps what the thread waits for, as it stood when the wait began.
  const save: ThreadState = {
    map,
    mode: "save",
    capacity: WAITED_WORDS,
    words: WAITED_WORDS,
    fill: fillWaited,
    unpaired: {
      map: ctx.counters,
      index: ctx.counter(WAIT_UNPAIRED, "io:wait-starts without a wait-done: the end was not seen"),
    },
  };
  const load: ThreadState = {
    map,
    mode: "load",
    capacity: WAITED_WORDS,
    key: nextPidTgid,
    required: true,
  };
  const own = new Set(["pid", "tid", "comm"]);
  return {
    name,
    fields: [
      ...nextTaskFields(),
      ...headerFields().filter((f) => !own.has(f.path[0])),
      field(["waitNs"], { type: "latency" }, latencyFromState()),
      ...waitedFields(waitedFromState),
    ],
    prepare: fillMounts,
    constants,
    hook: {
      name: "io_wait_done",
      type: "raw_tracepoint",
      attach,
      state: load,
      guard: (b, skip) => inIowait(NEXT, skip, b),
      // The process filter applies to the thread that resumes.
      subject: NEXT_TASK,
    },
    companions: [...recorders, {
      name: "io_wait_save",
      type: "raw_tracepoint",
      instructions: probeProgram({
        filter: ctx.filter,
        guard: (b, skip) => inIowait(PREV, skip, b),
        state: save,
      }),
      attach,
    }],
  };
}
