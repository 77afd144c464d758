/**
 * tsprobe: kernel tracing from TypeScript. Probes are compiled to BPF in-process (no clang),
 * loaded through libbpf, and their events reach your handlers through a ring buffer.
 *
 * @example Count openat calls of one command
 * ```ts ignore
 * import { run, syscall } from "./mod.ts";
 * syscall.on("openat:entry", (e) => console.log(e.pid, e.comm, e.args.filename));
 * const summary = await run({ command: ["ls", "/"] });
 * console.log(summary.events);
 * ```
 *
 * @module
 */
import { type Handler, type RunOptions, type RunSummary, Session } from "./runtime/session.ts";
import {
  type SyscallEntryEvent,
  type SyscallProbeOptions,
  syscallRequest,
  type SyscallReturnEvent,
} from "./runtime/providers/syscall.ts";
import { type TracepointEvent, tracepointRequest } from "./runtime/providers/tracepoint.ts";
import type { SyscallArgs } from "./runtime/providers/syscall_types.ts";
import type { TracepointArgs } from "./runtime/providers/tracepoint_types.ts";
import type { ProbeRequest } from "./runtime/providers/provider.ts";
import { Stream } from "./runtime/stream.ts";
import { checkFunction } from "./runtime/arguments.ts";
import { runHook } from "./runtime/host.ts";
import {
  type IoEvents,
  type IoProbe,
  ioRequest,
  requestCreationTracepoint,
} from "./runtime/providers/io/io.ts";
import {
  AIO_SYSCALLS,
  type AioDecoded,
  type AioProbeOptions,
  type AioReapEvent,
  aioRequest,
  type UringEvent,
} from "./runtime/providers/aio/aio.ts";

export type {
  Handler,
  RunOptions,
  RunSummary,
  SpanSummary,
  StopReason,
} from "./runtime/session.ts";
export { Session } from "./runtime/session.ts";
export {
  type AggregateOptions,
  Aggregation,
  type KernelLambda,
  type LinearOptions,
  type Params,
  span,
  type SpanEvent,
  type SpanOptions,
  Stream,
} from "./runtime/stream.ts";
export type {
  AggregationData,
  AggregationKind,
  AggregationRow,
  AggregationValue,
  Bucket,
  KeyPart,
  Stats,
} from "./runtime/aggregate/data.ts";
export { aggregationJson, formatAggregation } from "./runtime/aggregate/print.ts";
export { printable } from "./runtime/printable.ts";
export { DurationError } from "./runtime/duration.ts";
export { ArgumentError, NotAFunctionError, SizeError } from "./runtime/arguments.ts";
export { TargetError } from "./runtime/process_tree.ts";
export type {
  SyscallEntryEvent,
  SyscallProbeOptions,
  SyscallReturnEvent,
} from "./runtime/providers/syscall.ts";
export type { TracepointEvent } from "./runtime/providers/tracepoint.ts";
export { syscallName, UnknownArchitectureError } from "./runtime/providers/syscall_numbers.ts";
export type { KernelSyscallArgs, SyscallArgs } from "./runtime/providers/syscall_types.ts";
export type { KernelTracepointArgs, TracepointArgs } from "./runtime/providers/tracepoint_types.ts";
export type {
  BaselineSyscallArgs,
  BaselineTracepointArgs,
} from "./runtime/providers/baseline_types.ts";
export type {
  IoDoneEvent,
  IoEvents,
  IoProbe,
  IoStartEvent,
  IoWaitDoneEvent,
  IoWaitStartEvent,
} from "./runtime/providers/io/io.ts";
export { B, type BufInfo } from "./runtime/providers/io/bufinfo.ts";
export type { DevInfo } from "./runtime/providers/io/devinfo.ts";
export type {
  AioDecoded,
  AioProbeOptions,
  AioReapEvent,
  UringEvent,
} from "./runtime/providers/aio/aio.ts";
export type { Iocb, IoEvent, SigSet } from "./runtime/providers/aio/abi.ts";
export { AIO_COUNTERS } from "./runtime/providers/aio/lifecycle.ts";
export type { FileInfo } from "./runtime/providers/io/fileinfo.ts";
export type { EventHeader } from "./runtime/codegen/fields.ts";
export { LambdaError } from "./runtime/lambda/ir.ts";
export { ProbeNotFoundError } from "./system/tracefs.ts";
export { VerifierError } from "./bpf/program.ts";
export { BpfError, NotSupportedError } from "./bpf/errors.ts";

/** A syscall probe name: "openat:entry", "read:return". */
export type SyscallProbe = `${keyof SyscallArgs & string}:${"entry" | "return"}`;

/** The event type of a syscall probe name. */
export type SyscallEvent<P extends string> = P extends `${infer S}:return`
  ? SyscallReturnEvent<S extends keyof SyscallArgs ? SyscallArgs[S] : Record<string, unknown>>
  : P extends `${infer S}:entry`
    ? SyscallEntryEvent<S extends keyof SyscallArgs ? SyscallArgs[S] : Record<string, unknown>>
  : never;

/** The event type of a tracepoint name. */
export type TracepointEventOf<N extends string> = TracepointEvent<
  N extends keyof TracepointArgs ? TracepointArgs[N] : Record<string, unknown>
>;

let current = new Session();

/** The session that streams, aggregations and {@link run} use. */
export function session(): Session {
  return current;
}

function stream<E>(request: ProbeRequest): Stream<E> {
  return new Stream<E>(session, { kind: "probe", request, predicates: [] });
}

/** System call entries and returns. */
export const syscall = {
  /**
   * The events of a system call's entry or return, as a {@link Stream}; with a handler, also
   * calls it for each event. Return events carry `ret`, `latencyNs` (measured in the kernel)
   * and the entry's `args`; `options.buffers` reads user memory behind pointer arguments
   * (`{ buf: 64 }`).
   */
  on<P extends SyscallProbe>(
    probe: P,
    handler?: Handler<SyscallEvent<P>>,
    options?: SyscallProbeOptions,
  ): Stream<SyscallEvent<P>> {
    if (handler !== undefined) checkFunction(`syscall.on("${probe}")'s handler`, handler);
    const s = stream<SyscallEvent<P>>(syscallRequest(probe, options));
    if (handler) s.on(handler);
    return s;
  },
};

/**
 * Block I/O as DTrace's io provider sees it: `io.on("start")`, `"done"` (with `latencyNs`),
 * `"wait-start"` and `"wait-done"` (with `waitNs`); events carry `buf`, `dev` and `file`
 * (bufinfo_t, devinfo_t, fileinfo_t) under DTrace's names.
 */
export const io = {
  on<P extends IoProbe>(probe: P, handler?: Handler<IoEvents[P]>): Stream<IoEvents[P]> {
    if (handler !== undefined) checkFunction(`io.on("${probe}")'s handler`, handler);
    const s = stream<IoEvents[P]>(ioRequest(probe));
    if (handler) s.on(handler);
    return s;
  },
};

/** An aio probe name and its event. */
export type AioProbe = "reap" | "uring" | `${AioSyscall}:${"entry" | "return"}`;
type AioSyscall = (typeof AIO_SYSCALLS)[number];
/** Arguments of an AIO syscall under Tracee's names. */
type AioArgs<S extends AioSyscall> = S extends "io_setup"
  ? Omit<SyscallArgs["io_setup"], "ctxp"> & { ctx_idp: bigint }
  : S extends "io_destroy" ? Omit<SyscallArgs["io_destroy"], "ctx"> & { ctx_id: number }
  : SyscallArgs[S];
type AioEventOf<P extends string> = P extends "reap" ? AioReapEvent
  : P extends "uring" ? UringEvent
  : P extends `${infer S extends AioSyscall}:entry` ? SyscallEntryEvent<AioArgs<S>> & AioDecoded
  : P extends `${infer S extends AioSyscall}:return` ? SyscallReturnEvent<AioArgs<S>> & AioDecoded
  : never;

/**
 * Linux native AIO: `aio.on("reap")` gives one event per request from io_submit to its reap
 * (`latencyNs`, `op`, `fd`, `path`, `bytes`, `res`); `aio.on("uring")` the same for io_uring
 * requests until the kernel posts their completion; `aio.on("io_submit:entry", h, { decode:
 * true })` and the other AIO syscalls with Tracee's argument names and decoded contents.
 */
export const aio = {
  on<P extends AioProbe>(
    probe: P,
    handler?: Handler<AioEventOf<P>>,
    options?: AioProbeOptions,
  ): Stream<AioEventOf<P>> {
    if (handler !== undefined) checkFunction(`aio.on("${probe}")'s handler`, handler);
    const s = stream<AioEventOf<P>>(aioRequest(probe, options));
    if (handler) s.on(handler);
    return s;
  },
};

/**
 * A block request's creation, in the context of the task that submitted it, with its `dev`,
 * `sector`, `nr_sector` and `comm`: `block:block_io_start` where the kernel has it (6.5+),
 * else `block:block_getrq`, fired at the same place.
 */
export function requestCreated(): Stream<TracepointEventOf<"block:block_getrq">> {
  return tracepoint(requestCreationTracepoint()) as Stream<TracepointEventOf<"block:block_getrq">>;
}

/** The events of a kernel tracepoint, e.g. `tracepoint("block:block_rq_issue")`. */
export function tracepoint<N extends string>(name: N): Stream<TracepointEventOf<N>> {
  return stream(tracepointRequest(name));
}

/**
 * What the probes added so far would do, without loading anything: the fields captured, what
 * runs in the kernel and what in JavaScript, the maps, and the BPF programs as assembly.
 */
export function explain(options: RunOptions = {}): Promise<string> {
  return current.explain(options);
}

/**
 * Runs every probe added so far until the duration ends, Ctrl-C or SIGTERM, {@link exit}, or
 * the traced command exits. Afterwards nothing of the session stays in the kernel, and the
 * next probes added start a new session.
 */
export async function run(options: RunOptions = {}): Promise<RunSummary> {
  const s = current;
  // A host's hook (`probe run --explain`: show what would load, load nothing).
  const hook = runHook();
  if (hook) return hook(s, options);
  try {
    return await s.run(options);
  } finally {
    if (current === s) current = new Session();
  }
}

/** Ends the running session from a handler (like DTrace's `exit()`). */
export function exit(): void {
  current.stop("exit");
}
