/**
 * The scripting surface: one global {@link Session} that every probe joins, the providers that
 * add probes to it (`syscall`, `io`, `aio`, `tracepoint`), and {@link run}, {@link explain} and
 * {@link exit}, which act on it. A script reads as a list of probes followed by `await run()`,
 * as a DTrace or bpftrace script does; `new Session()` is for a program that needs several.
 *
 * Each provider's facade is a module of its own under dsl/ (a one-liner loads only those it
 * names); this module gathers them. Every export has an explicit type (the providers are
 * objects typed by a named interface), so the published package has no types that JSR must
 * infer.
 *
 * @module
 */
export { exit, explain, type Glob, run, session } from "./dsl/global.ts";
export {
  syscall,
  type SyscallEvent,
  type SyscallProbe,
  type SyscallProvider,
} from "./dsl/syscall.ts";
export { tracepoint, type TracepointEventOf } from "./dsl/tracepoint.ts";
export { io, type IoProvider, requestCreated } from "./dsl/io.ts";
export {
  aio,
  type AioArgs,
  type AioEventOf,
  type AioProbe,
  type AioProvider,
  type AioSyscall,
} from "./dsl/aio.ts";
export { uprobe, type UprobeProvider, uretprobe, type UretprobeProvider } from "./dsl/uprobe.ts";
export { kprobe, type KprobeProvider, kretprobe, type KretprobeProvider } from "./dsl/kprobe.ts";
export { fentry, type FentryProvider, fexit, type FexitProvider } from "./dsl/fentry.ts";
export { proc, type ProcProvider } from "./dsl/proc.ts";
export { sched, type SchedProvider } from "./dsl/sched.ts";
export { usdt, type UsdtProvider } from "./dsl/usdt.ts";
export { profile } from "./dsl/profile.ts";
