/**
 * The `sched` provider of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import { type SchedEvents, type SchedProbe, schedRequest } from "../providers/sched.ts";
import { on } from "./global.ts";

/** The `sched` provider's methods. */
export interface SchedProvider {
  /**
   * The events of sched probe `probe` ("off-cpu", "on-cpu") as a {@link Stream}; with a
   * handler, also calls it for each event.
   */
  on<P extends SchedProbe>(probe: P, handler?: Handler<SchedEvents[P]>): Stream<SchedEvents[P]>;
}

/**
 * Tasks leaving and regaining CPUs, as DTrace's sched provider: `sched.on("on-cpu")` carries
 * `offcpuNs` and the stacks the task left with, for off-CPU analysis.
 *
 * @example Off-CPU time by stack
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, sched } from "../dsl.ts";
 * sched.on("on-cpu").sum((e) => e.offcpuNs!, { by: (e) => [e.comm, e.kstack, e.ustack] });
 * await run({ duration: "10s" });
 * ```
 */
export const sched: SchedProvider = {
  on<P extends SchedProbe>(probe: P, handler?: Handler<SchedEvents[P]>): Stream<SchedEvents[P]> {
    return on(`sched.on("${probe}")`, handler, () => schedRequest(probe));
  },
};
