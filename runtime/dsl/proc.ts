/**
 * The `proc` provider of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import { type ExecEvent, procRequest } from "../providers/proc.ts";
import { on } from "./global.ts";

/** The `proc` provider's methods. */
export interface ProcProvider {
  /**
   * The events of proc probe `probe` ("exec": a process replaced its program, with `argv`
   * and `ppid`) as a {@link Stream}; with a handler, also calls it for each event.
   */
  on(probe: "exec", handler?: Handler<ExecEvent>): Stream<ExecEvent>;
}

/**
 * Process lifecycle, as DTrace's proc provider: `proc.on("exec")` for every program started,
 * with its whole command line read in the kernel.
 *
 * @example Every command line run
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { proc, run } from "../dsl.ts";
 * proc.on("exec", (e) => console.log(e.pid, e.ppid, e.argv.join(" ")));
 * await run({ duration: "10s" });
 * ```
 */
export const proc: ProcProvider = {
  on(probe: "exec", handler?: Handler<ExecEvent>): Stream<ExecEvent> {
    return on(`proc.on("${probe}")`, handler, () => procRequest(probe));
  },
};
