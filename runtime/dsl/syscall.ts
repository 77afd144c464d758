/**
 * The `syscall` provider of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import {
  type SyscallEntryEvent,
  type SyscallProbeOptions,
  syscallRequest,
  type SyscallReturnEvent,
} from "../providers/syscall.ts";
import {
  type SyscallPatternEntryEvent,
  syscallPatternRequest,
  type SyscallPatternReturnEvent,
} from "../providers/syscall_pattern.ts";
import type { SyscallArgs } from "../providers/syscall_types.ts";
import { hasGlob } from "../../system/glob.ts";
import { type Glob, on } from "./global.ts";

/**
 * A syscall probe name: "openat:entry", "read:return"; or a pattern of names with a side:
 * "*:entry", "read*:return", "{read,write}:entry".
 */
export type SyscallProbe =
  | `${keyof SyscallArgs & string}:${"entry" | "return"}`
  | `${Glob}:${"entry" | "return"}`;

/**
 * The event type of a syscall probe name: its arguments typed from the kernel's format files
 * where the name is known, loosely (`Record<string, unknown>`) where it is not; a pattern's
 * events have the six raw argument words instead (a pattern's syscalls take different ones).
 */
export type SyscallEvent<P extends string> = P extends `${Glob}:return` ? SyscallPatternReturnEvent
  : P extends `${Glob}:entry` ? SyscallPatternEntryEvent
  : P extends `${infer S}:return`
    ? SyscallReturnEvent<S extends keyof SyscallArgs ? SyscallArgs[S] : Record<string, unknown>>
  : P extends `${infer S}:entry`
    ? SyscallEntryEvent<S extends keyof SyscallArgs ? SyscallArgs[S] : Record<string, unknown>>
  : never;

/** The `syscall` provider's methods. */
export interface SyscallProvider {
  /**
   * The events of a system call's entry or return, as a {@link Stream}; with a handler, also
   * calls it for each event. Return events carry `ret`, `latencyNs` (measured in the kernel)
   * and the entry's `args`; `options.buffers` reads user memory behind pointer arguments
   * (`{ buf: 64 }`).
   *
   * A pattern of names (`"*:entry"`, `"read*:return"`, `"{read,write}:entry"`: `*`, `?` and
   * `{a,b}` globs) traces every syscall it matches with one program on `raw_syscalls`; its
   * events name the syscall (`e.syscall`, `e.probe`, also as kernel keys and in kernel
   * predicates) and carry its number `id` and the six raw argument words `args.arg0`..`arg5`
   * (bigint), not named arguments, and take no `buffers`. A pattern matching no syscall is a
   * one-line error naming the closest.
   */
  on<P extends SyscallProbe>(
    probe: P,
    handler?: Handler<SyscallEvent<P>>,
    options?: SyscallProbeOptions,
  ): Stream<SyscallEvent<P>>;
}

/**
 * System call entries and returns, by name or by pattern.
 *
 * @example Files opened, and slow reads
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "../dsl.ts";
 * syscall.on("openat:entry", (e) => console.log(e.comm, e.args.filename));
 * syscall.on("read:return").where((e) => e.latencyNs! > 1_000_000).count((e) => e.comm);
 * await run({ duration: "5s" });
 * ```
 *
 * @example Every syscall, counted by name in the kernel (bpftrace's `sys_enter_*`)
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "../dsl.ts";
 * syscall.on("*:entry").count((e) => e.syscall);
 * syscall.on("{read,write}:return").where((e) => e.ret < 0).count((e) => [e.syscall, e.ret]);
 * await run({ duration: "5s" });
 * ```
 */
export const syscall: SyscallProvider = {
  on<P extends SyscallProbe>(
    probe: P,
    handler?: Handler<SyscallEvent<P>>,
    options?: SyscallProbeOptions,
  ): Stream<SyscallEvent<P>> {
    return on(
      `syscall.on("${probe}")`,
      handler,
      () => hasGlob(probe) ? syscallPatternRequest(probe, options) : syscallRequest(probe, options),
    );
  },
};
