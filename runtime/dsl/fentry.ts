/**
 * The `fentry` and `fexit` providers of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import { type FentryEvent, fentryRequest, type FexitEvent } from "../providers/functions/fentry.ts";
import { on } from "./global.ts";

/** The `fentry` provider's methods. */
export interface FentryProvider {
  /**
   * The calls of kernel function `func` through the BPF trampoline as a {@link Stream}, with
   * its arguments under `args` by their BTF names; with a handler, also calls it for each
   * event. Where the kernel refuses tracing programs, {@link run} fails in one line.
   */
  on(func: string, handler?: Handler<FentryEvent>): Stream<FentryEvent>;
}

/**
 * Kernel function entries, typed by BTF: `fentry.on("vfs_read")` gives `e.args.count`.
 *
 * @example Bytes asked of vfs_read, per process
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (and a kernel with the trampoline).
 * import { fentry, run } from "../dsl.ts";
 * fentry.on("vfs_read").sum((e) => e.args.count, { by: (e) => e.comm });
 * await run({ duration: "5s" });
 * ```
 */
export const fentry: FentryProvider = {
  on(func: string, handler?: Handler<FentryEvent>): Stream<FentryEvent> {
    return on(`fentry.on("${func}")`, handler, () => fentryRequest("fentry", func));
  },
};

/** The `fexit` provider's methods. */
export interface FexitProvider {
  /**
   * The returns of kernel function `func` as a {@link Stream}: `args` as at entry and
   * `retval`; with a handler, also calls it for each event.
   */
  on(func: string, handler?: Handler<FexitEvent>): Stream<FexitEvent>;
}

/**
 * Kernel function exits, typed by BTF: `fexit.on("vfs_read")` gives `e.retval` and `e.args`.
 *
 * @example Failed vfs_read calls, by error
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (and a kernel with the trampoline).
 * import { fexit, run } from "../dsl.ts";
 * fexit.on("vfs_read").where((e) => e.retval < 0).count((e) => e.retval);
 * await run({ duration: "5s" });
 * ```
 */
export const fexit: FexitProvider = {
  on(func: string, handler?: Handler<FexitEvent>): Stream<FexitEvent> {
    return on(`fexit.on("${func}")`, handler, () => fentryRequest("fexit", func));
  },
};
