/**
 * The scripting surface: one global {@link Session} that every probe joins, the providers that
 * add probes to it (`syscall`, `io`, `aio`, `tracepoint`), and {@link run}, {@link explain} and
 * {@link exit}, which act on it. A script reads as a list of probes followed by `await run()`,
 * as a DTrace or bpftrace script does; `new Session()` is for a program that needs several.
 *
 * Every export has an explicit type (the providers are objects typed by a named interface), so
 * the published package has no types that JSR must infer.
 *
 * @module
 */
import { type Handler, type RunOptions, type RunSummary, Session } from "./session.ts";
import { Stream } from "./stream.ts";
import { checkFunction } from "./arguments.ts";
import { runHook } from "./host.ts";
import type { ProbeRequest } from "./providers/provider.ts";
import {
  type SyscallEntryEvent,
  type SyscallProbeOptions,
  syscallRequest,
  type SyscallReturnEvent,
} from "./providers/syscall.ts";
import { type TracepointEvent, tracepointRequest } from "./providers/tracepoint.ts";
import {
  type SyscallPatternEntryEvent,
  syscallPatternRequest,
  type SyscallPatternReturnEvent,
} from "./providers/syscall_pattern.ts";
import { tracepointPatternRequest } from "./providers/tracepoint_pattern.ts";
import { hasGlob } from "../system/glob.ts";
import { type ProfileEvent, type ProfileOptions, profileRequest } from "./providers/profile.ts";
import { type SchedEvents, type SchedProbe, schedRequest } from "./providers/sched.ts";
import { type ExecEvent, procRequest } from "./providers/proc.ts";
import { type UsdtEvent, type UsdtProbeOptions, usdtRequest } from "./providers/functions/usdt.ts";
import { type FentryEvent, fentryRequest, type FexitEvent } from "./providers/functions/fentry.ts";
import {
  type KprobeEvent,
  kprobeRequest,
  type KretprobeEvent,
} from "./providers/functions/kprobe.ts";
import {
  type UprobeEvent,
  type UprobeOptions,
  uprobeRequest,
  type UretprobeEvent,
} from "./providers/functions/uprobe.ts";
import type { SyscallArgs } from "./providers/syscall_types.ts";
import type { TracepointArgs } from "./providers/tracepoint_types.ts";
import {
  type IoEvents,
  type IoProbe,
  ioRequest,
  requestCreationTracepoint,
} from "./providers/io/io.ts";
import {
  type AIO_SYSCALLS,
  type AioDecoded,
  type AioProbeOptions,
  type AioReapEvent,
  aioRequest,
  type UringEvent,
} from "./providers/aio/aio.ts";

/** A glob over probe names: has `*` (any run of characters), `?` (one) or `{a,b}` (either). */
export type Glob = `${string}${"*" | "?" | "{"}${string}`;

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

/**
 * The event type of a tracepoint name ("block:block_rq_issue"); for a pattern ("block:*"),
 * `args` are loose: which fields all matches share is known only to the running kernel.
 */
export type TracepointEventOf<N extends string> = TracepointEvent<
  N extends Glob ? Record<string, unknown>
    : N extends keyof TracepointArgs ? TracepointArgs[N]
    : Record<string, unknown>
>;

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

let current = new Session();

/**
 * The session that streams, aggregations and {@link run} use: a new one after each run.
 *
 * @example What the probes so far would load
 * ```ts ignore
 * // ignore: explain() reads the kernel's tracepoint formats, which only root may read.
 * import { session, syscall } from "./dsl.ts";
 * syscall.on("read:return").hist((e) => e.ret);
 * console.log(await session().explain());
 * ```
 */
export function session(): Session {
  return current;
}

/** A stream of the global session's probe `request`, before any predicate. */
function stream<E>(request: ProbeRequest): Stream<E> {
  return new Stream<E>(session, { kind: "probe", request, predicates: [] });
}

/**
 * What a provider's `on()` does: checks the handler (named as `call`, e.g. `io.on("start")`)
 * before the probe is resolved, makes the stream, and subscribes the handler when there is one.
 */
function on<E>(
  call: string,
  handler: Handler<E> | undefined,
  request: () => ProbeRequest,
): Stream<E> {
  if (handler !== undefined) checkFunction(`${call}'s handler`, handler);
  const s = stream<E>(request());
  if (handler) s.on(handler);
  return s;
}

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
 * import { run, syscall } from "./dsl.ts";
 * syscall.on("openat:entry", (e) => console.log(e.comm, e.args.filename));
 * syscall.on("read:return").where((e) => e.latencyNs! > 1_000_000).count((e) => e.comm);
 * await run({ duration: "5s" });
 * ```
 *
 * @example Every syscall, counted by name in the kernel (bpftrace's `sys_enter_*`)
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "./dsl.ts";
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

/** The `io` provider's methods. */
export interface IoProvider {
  /**
   * The events of io probe `probe` ("start", "done", "wait-start", "wait-done") as a
   * {@link Stream}; with a handler, also calls it for each event.
   */
  on<P extends IoProbe>(probe: P, handler?: Handler<IoEvents[P]>): Stream<IoEvents[P]>;
}

/**
 * Block I/O as DTrace's io provider sees it: `io.on("start")`, `"done"` (with `latencyNs`),
 * `"wait-start"` and `"wait-done"` (with `waitNs`); events carry `buf`, `dev` and `file`
 * (bufinfo_t, devinfo_t, fileinfo_t) under DTrace's names.
 *
 * @example Block I/O latency per device
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { io, run } from "./dsl.ts";
 * io.on("done").hist((e) => e.latencyNs! / 1000, { by: (e) => e.dev.dev_statname });
 * await run({ duration: "10s" });
 * ```
 */
export const io: IoProvider = {
  on<P extends IoProbe>(probe: P, handler?: Handler<IoEvents[P]>): Stream<IoEvents[P]> {
    return on(`io.on("${probe}")`, handler, () => ioRequest(probe));
  },
};

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
 * import { aio, run } from "./dsl.ts";
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

/**
 * A block request's creation, in the context of the task that submitted it, with its `dev`,
 * `sector`, `nr_sector` and `comm`: `block:block_io_start` where the kernel has it (6.5+),
 * else `block:block_getrq`, fired at the same place.
 */
export function requestCreated(): Stream<TracepointEventOf<"block:block_getrq">> {
  return tracepoint(requestCreationTracepoint()) as Stream<TracepointEventOf<"block:block_getrq">>;
}

/**
 * The events of a kernel tracepoint, e.g. `tracepoint("block:block_rq_issue")`, with every
 * field of its format under `args`.
 *
 * A pattern (`"block:*"`, `"sched:sched_process_{fork,exit}"`: `*`, `?` and `{a,b}` globs)
 * attaches one program to each tracepoint it matches, at most 128 (the kernel takes about
 * 75 ms to detach each): `e.probe` names the one that fired (a string in the kernel too, so
 * `count((e) => e.probe)` counts per tracepoint there), and `args` has only the fields every
 * match has with the same type, loosely typed (`Record<string, unknown>`). A pattern matching
 * nothing is a one-line error naming the closest tracepoints.
 *
 * @example Block requests issued, by device
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, tracepoint } from "./dsl.ts";
 * tracepoint("block:block_rq_issue").count((e) => e.args.dev);
 * await run({ duration: "5s" });
 * ```
 *
 * @example Which block tracepoints fire, per device
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, tracepoint } from "./dsl.ts";
 * tracepoint("block:block_rq_*").count((e) => [e.probe, e.args.dev as number]);
 * await run({ duration: "5s" });
 * ```
 */
export function tracepoint<N extends string>(name: N): Stream<TracepointEventOf<N>> {
  return stream(hasGlob(name) ? tracepointPatternRequest(name) : tracepointRequest(name));
}

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
 * import { run, uprobe } from "./dsl.ts";
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
 * import { run, uretprobe } from "./dsl.ts";
 * uretprobe.on("/usr/bin/bash:readline", (e) => console.log(e.pid, e.retval));
 * await run();
 * ```
 */
export const uretprobe: UretprobeProvider = {
  on(probe: string, handler?: Handler<UretprobeEvent>): Stream<UretprobeEvent> {
    return on(`uretprobe.on("${probe}")`, handler, () => uprobeRequest("uretprobe", probe));
  },
};

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
 * import { kprobe, run } from "./dsl.ts";
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
 * import { kretprobe, run } from "./dsl.ts";
 * kretprobe.on("vfs_fsync").where((e) => e.retval !== 0n).count((e) => e.comm);
 * await run({ duration: "5s" });
 * ```
 */
export const kretprobe: KretprobeProvider = {
  on(func: string, handler?: Handler<KretprobeEvent>): Stream<KretprobeEvent> {
    return on(`kretprobe.on("${func}")`, handler, () => kprobeRequest("kretprobe", func));
  },
};

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
 * import { fentry, run } from "./dsl.ts";
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
 * import { fexit, run } from "./dsl.ts";
 * fexit.on("vfs_read").where((e) => e.retval < 0).count((e) => e.retval);
 * await run({ duration: "5s" });
 * ```
 */
export const fexit: FexitProvider = {
  on(func: string, handler?: Handler<FexitEvent>): Stream<FexitEvent> {
    return on(`fexit.on("${func}")`, handler, () => fentryRequest("fexit", func));
  },
};

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
 * import { proc, run } from "./dsl.ts";
 * proc.on("exec", (e) => console.log(e.pid, e.ppid, e.argv.join(" ")));
 * await run({ duration: "10s" });
 * ```
 */
export const proc: ProcProvider = {
  on(probe: "exec", handler?: Handler<ExecEvent>): Stream<ExecEvent> {
    return on(`proc.on("${probe}")`, handler, () => procRequest(probe));
  },
};

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
 * import { run, sched } from "./dsl.ts";
 * sched.on("on-cpu").sum((e) => e.offcpuNs!, { by: (e) => [e.comm, e.kstack, e.ustack] });
 * await run({ duration: "10s" });
 * ```
 */
export const sched: SchedProvider = {
  on<P extends SchedProbe>(probe: P, handler?: Handler<SchedEvents[P]>): Stream<SchedEvents[P]> {
    return on(`sched.on("${probe}")`, handler, () => schedRequest(probe));
  },
};

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
 * import { run, usdt } from "./dsl.ts";
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

/**
 * Samples of every online CPU, `hz` times a second on each (default 99): the task running,
 * with its stacks. The basis of CPU profiles and flame graphs.
 *
 * @example The hottest kernel and user stacks
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { profile, run } from "./dsl.ts";
 * profile({ hz: 99 }).count((e) => [e.kstack, e.ustack], { top: 10 });
 * await run({ duration: "10s" });
 * ```
 */
export function profile(options: ProfileOptions = {}): Stream<ProfileEvent> {
  return stream(profileRequest(options));
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
 *
 * @example Trace one command from its first instruction
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "./dsl.ts";
 * syscall.on("openat:entry", (e) => console.log(e.args.filename));
 * const summary = await run({ command: ["ls", "/"] });
 * console.log(summary.commandExitCode, summary.dropped);
 * ```
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
