/**
 * The `usdt` provider of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import { type UsdtEvent, type UsdtProbeOptions, usdtRequest } from "../providers/functions/usdt.ts";
import { on } from "./global.ts";

/** The `usdt` provider's methods. */
export interface UsdtProvider {
  /**
   * The firings of USDT probe "TARGET:PROVIDER:NAME" (TARGET a file path or a library's short
   * name) as a {@link Stream}, with its arguments as `arg0`..; `options.strings` reads the
   * strings some arguments point to (`str0`..); with a handler, also calls it for each event.
   */
  on(probe: string, handler?: Handler<UsdtEvent>, options?: UsdtProbeOptions): Stream<UsdtEvent>;
}

/**
 * Statically defined probes of user programs (`sys/sdt.h`, DTrace's USDT), with their
 * semaphores set while traced: `usdt.on("/usr/bin/python3:python:function__entry")`.
 *
 * @example Python function calls, by name
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, usdt } from "../dsl.ts";
 * usdt.on("/usr/bin/python3:python:function__entry", undefined, { strings: [1] })
 *   .count((e) => e.str1);
 * await run({ duration: "5s" });
 * ```
 */
export const usdt: UsdtProvider = {
  on(probe: string, handler?: Handler<UsdtEvent>, options?: UsdtProbeOptions): Stream<UsdtEvent> {
    return on(`usdt.on("${probe}")`, handler, () => usdtRequest(probe, options));
  },
};
