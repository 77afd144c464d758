/**
 * The `uprobe` and `uretprobe` providers of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import {
  type UprobeEvent,
  type UprobeOptions,
  uprobeRequest,
  type UretprobeEvent,
} from "../providers/functions/uprobe.ts";
import { on } from "./global.ts";

/** The `uprobe` provider's methods. */
export interface UprobeProvider {
  /**
   * The calls of a function in an executable or shared library ("/usr/bin/bash:readline",
   * "libc:malloc", "TARGET:SYMBOL+OFFSET") as a {@link Stream}, with its first six arguments
   * as `arg0`..`arg5`; with a handler, also calls it for each event.
   */
  on(
    probe: string,
    handler?: Handler<UprobeEvent>,
    options?: UprobeOptions,
  ): Stream<UprobeEvent>;
}

/**
 * User-space function entries, in every process that runs the function (narrowed by the
 * session's `pid` or `command`): `uprobe.on("libc:malloc")`.
 *
 * @example Bytes malloc'ed per process
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, uprobe } from "../dsl.ts";
 * uprobe.on("libc:malloc").sum((e) => e.arg0, { by: (e) => e.comm });
 * await run({ duration: "5s" });
 * ```
 */
export const uprobe: UprobeProvider = {
  on(probe: string, handler?: Handler<UprobeEvent>, options?: UprobeOptions): Stream<UprobeEvent> {
    return on(`uprobe.on("${probe}")`, handler, () => uprobeRequest("uprobe", probe, options));
  },
};

/** The `uretprobe` provider's methods. */
export interface UretprobeProvider {
  /**
   * The returns of a function in an executable or shared library as a {@link Stream}, with
   * its return value as `retval`; with a handler, also calls it for each event.
   */
  on(probe: string, handler?: Handler<UretprobeEvent>): Stream<UretprobeEvent>;
}

/**
 * User-space function returns: `uretprobe.on("/usr/bin/bash:readline")`.
 *
 * @example What readline returned
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, uretprobe } from "../dsl.ts";
 * uretprobe.on("/usr/bin/bash:readline", (e) => console.log(e.pid, e.retval));
 * await run();
 * ```
 */
export const uretprobe: UretprobeProvider = {
  on(probe: string, handler?: Handler<UretprobeEvent>): Stream<UretprobeEvent> {
    return on(`uretprobe.on("${probe}")`, handler, () => uprobeRequest("uretprobe", probe));
  },
};
