/**
 * Following a traced command's descendants: the programs that add a forked child of a traced
 * process to the session's pid set (`sched:sched_process_fork`) and remove an exiting task
 * from it (`sched:sched_process_exit`). A child that cannot join, the set being full, is
 * counted in {@link FOLLOW_LOST}.
 *
 * @module
 */
import { attachTracepoint } from "../../bpf/link.ts";
import { followProgram, unfollowProgram } from "../codegen/follow_program.ts";
import type { ProgramPlan, SiteContext } from "./provider.ts";
import { tracepointFormat } from "./tracepoint.ts";

/** The counter of a traced command's children that could not be followed (full pid map). */
export const FOLLOW_LOST = "follow.lost";

/** The follow programs for the pid set `pids` of size `capacity`. */
export function followPrograms(ctx: SiteContext, pids: string, capacity: number): ProgramPlan[] {
  const fork = tracepointFormat("sched", "sched_process_fork");
  const exit = tracepointFormat("sched", "sched_process_exit");
  const childPid = fork.fields.find((f) => f.name === "child_pid")!;
  const lost = ctx.counter(
    FOLLOW_LOST,
    `processes the command started were not traced: the map of traced pids was full ` +
      `(${capacity} at once)`,
  );
  return [{
    name: "tsp_follow",
    type: "tracepoint",
    instructions: followProgram(pids, childPid.offset, ctx.counters, lost),
    attach: (p) => attachTracepoint(p, fork.id, "sched:sched_process_fork"),
  }, {
    name: "tsp_unfollow",
    type: "tracepoint",
    instructions: unfollowProgram(pids),
    attach: (p) => attachTracepoint(p, exit.id, "sched:sched_process_exit"),
  }];
}
