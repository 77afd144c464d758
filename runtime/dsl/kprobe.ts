/**
 * The `kprobe` and `kretprobe` providers of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import {
  type KprobeEvent,
  kprobeRequest,
  type KretprobeEvent,
} from "../providers/functions/kprobe.ts";
import { on } from "./global.ts";

/** The `kprobe` provider's methods. */
export interface KprobeProvider {
  /**
   * The calls of kernel function `func` as a {@link Stream}, with its first six arguments as
   * `arg0`..`arg5`; with a handler, also calls it for each event. Where the kernel has no
   * kprobes, {@link run} fails in one line naming the tracepoints to use instead.
   */
  on(func: string, handler?: Handler<KprobeEvent>): Stream<KprobeEvent>;
}

/**
 * Kernel function entries: `kprobe.on("vfs_read")`.
 *
 * @example Which processes call vfs_fsync
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (and a kernel with kprobes).
 * import { kprobe, run } from "../dsl.ts";
 * kprobe.on("vfs_fsync").count((e) => e.comm);
 * await run({ duration: "5s" });
 * ```
 */
export const kprobe: KprobeProvider = {
  on(func: string, handler?: Handler<KprobeEvent>): Stream<KprobeEvent> {
    return on(`kprobe.on("${func}")`, handler, () => kprobeRequest("kprobe", func));
  },
};

/** The `kretprobe` provider's methods. */
export interface KretprobeProvider {
  /**
   * The returns of kernel function `func` as a {@link Stream}, with its return value as
   * `retval`; with a handler, also calls it for each event.
   */
  on(func: string, handler?: Handler<KretprobeEvent>): Stream<KretprobeEvent>;
}

/**
 * Kernel function returns: `kretprobe.on("vfs_read")`.
 *
 * @example Failed vfs_fsync calls
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (and a kernel with kprobes).
 * import { kretprobe, run } from "../dsl.ts";
 * kretprobe.on("vfs_fsync").where((e) => e.retval !== 0n).count((e) => e.comm);
 * await run({ duration: "5s" });
 * ```
 */
export const kretprobe: KretprobeProvider = {
  on(func: string, handler?: Handler<KretprobeEvent>): Stream<KretprobeEvent> {
    return on(`kretprobe.on("${func}")`, handler, () => kprobeRequest("kretprobe", func));
  },
};
