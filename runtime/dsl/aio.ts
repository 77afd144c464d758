/**
 * The `aio` provider of the scripting surface.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import type { SyscallEntryEvent, SyscallReturnEvent } from "../providers/syscall.ts";
import type { SyscallArgs } from "../providers/syscall_types.ts";
import {
  type AIO_SYSCALLS,
  type AioDecoded,
  type AioProbeOptions,
  type AioReapEvent,
  aioRequest,
  type UringEvent,
} from "../providers/aio/aio.ts";
import { on } from "./global.ts";

/** An AIO syscall: "io_setup", "io_submit", "io_getevents" and the rest. */
export type AioSyscall = (typeof AIO_SYSCALLS)[number];

/** An aio probe name: "reap", "uring", or an AIO syscall's "NAME:entry" or "NAME:return". */
export type AioProbe = "reap" | "uring" | `${AioSyscall}:${"entry" | "return"}`;

/** The arguments of an AIO syscall under Tracee's names (`ctx_idp`, `ctx_id`). */
export type AioArgs<S extends AioSyscall> = S extends "io_setup"
  ? Omit<SyscallArgs["io_setup"], "ctxp"> & { ctx_idp: bigint }
  : S extends "io_destroy" ? Omit<SyscallArgs["io_destroy"], "ctx"> & { ctx_id: number }
  : SyscallArgs[S];

/** The event type of an aio probe name. */
export type AioEventOf<P extends string> = P extends "reap" ? AioReapEvent
  : P extends "uring" ? UringEvent
  : P extends `${infer S extends AioSyscall}:entry` ? SyscallEntryEvent<AioArgs<S>> & AioDecoded
  : P extends `${infer S extends AioSyscall}:return` ? SyscallReturnEvent<AioArgs<S>> & AioDecoded
  : never;

/** The `aio` provider's methods. */
export interface AioProvider {
  /**
   * The events of aio probe `probe` as a {@link Stream}; with a handler, also calls it for
   * each event. `options.decode` decodes what an AIO syscall's pointers point to;
   * `options.optional` runs without a probe this kernel lacks, with a note.
   */
  on<P extends AioProbe>(
    probe: P,
    handler?: Handler<AioEventOf<P>>,
    options?: AioProbeOptions,
  ): Stream<AioEventOf<P>>;
}

/**
 * Linux native AIO: `aio.on("reap")` gives one event per request from io_submit to its reap
 * (`latencyNs`, `op`, `fd`, `path`, `bytes`, `res`); `aio.on("uring")` the same for io_uring
 * requests until the kernel posts their completion; `aio.on("io_submit:entry", h, { decode:
 * true })` and the other AIO syscalls with Tracee's argument names and decoded contents.
 *
 * @example AIO latency per opcode
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { aio, run } from "../dsl.ts";
 * aio.on("reap").hist((e) => e.latencyNs / 1000, { by: (e) => e.op });
 * await run({ command: ["fio", "job.fio"] });
 * ```
 */
export const aio: AioProvider = {
  on<P extends AioProbe>(
    probe: P,
    handler?: Handler<AioEventOf<P>>,
    options?: AioProbeOptions,
  ): Stream<AioEventOf<P>> {
    return on(`aio.on("${probe}")`, handler, () => aioRequest(probe, options));
  },
};
