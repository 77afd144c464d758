/**
 * tsprobe: kernel tracing from TypeScript. Probes are compiled to BPF in-process (no clang),
 * loaded through libbpf, and their events reach your handlers through a ring buffer.
 *
 * This module only re-exports: the scripting surface is runtime/dsl.ts, and the other entry
 * points are `recipe.ts` (command-line recipes) and `workload.ts` (demo workloads).
 *
 * @example Count openat calls of one command
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "./mod.ts";
 * syscall.on("openat:entry", (e) => console.log(e.pid, e.comm, e.args.filename));
 * const summary = await run({ command: ["ls", "/"] });
 * console.log(summary.events);
 * ```
 *
 * @module
 */
export {
  aio,
  type AioArgs,
  type AioEventOf,
  type AioProbe,
  type AioProvider,
  type AioSyscall,
  exit,
  explain,
  fentry,
  type FentryProvider,
  fexit,
  type FexitProvider,
  type Glob,
  io,
  type IoProvider,
  kprobe,
  type KprobeProvider,
  kretprobe,
  type KretprobeProvider,
  proc,
  type ProcProvider,
  profile,
  requestCreated,
  run,
  sched,
  type SchedProvider,
  session,
  syscall,
  type SyscallEvent,
  type SyscallProbe,
  type SyscallProvider,
  tracepoint,
  type TracepointEventOf,
  uprobe,
  type UprobeProvider,
  uretprobe,
  type UretprobeProvider,
  usdt,
  type UsdtProvider,
} from "./runtime/dsl.ts";
export type {
  UprobeEvent,
  UprobeOptions,
  UretprobeEvent,
} from "./runtime/providers/functions/uprobe.ts";
export type { KprobeEvent, KretprobeEvent } from "./runtime/providers/functions/kprobe.ts";
export type { RegisterArguments } from "./runtime/providers/functions/registers.ts";
export type { FentryEvent, FexitEvent } from "./runtime/providers/functions/fentry.ts";
export type { ProfileEvent, ProfileOptions } from "./runtime/providers/profile.ts";
export type { ExecEvent } from "./runtime/providers/proc.ts";
export type {
  OffCpuEvent,
  OnCpuEvent,
  SchedEvents,
  SchedProbe,
} from "./runtime/providers/sched.ts";
export type { UsdtEvent, UsdtProbeOptions } from "./runtime/providers/functions/usdt.ts";
export type {
  Attached,
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
  type HistogramOptions,
  type KernelLambda,
  type LinearOptions,
  type Params,
  span,
  type SpanEvent,
  type SpanOptions,
  Stream,
} from "./runtime/stream.ts";
export {
  type AggregationData,
  type AggregationKind,
  type AggregationRow,
  type AggregationValue,
  type Bucket,
  type KeyPart,
  type LinearRange,
  type MetricOptions,
  quantile,
  type Stats,
} from "./runtime/aggregate/data.ts";
export {
  type AggregationJson,
  aggregationJson,
  type AggregationRowJson,
  type BucketJson,
  formatAggregation,
  type FormatOptions,
  intervalHeader,
  type JsonKey,
  type JsonKeyPart,
} from "./runtime/aggregate/print.ts";
export {
  type AggregationRecord,
  type EndRecord,
  type EventRecord,
  type JsonValue,
  type OutputRecord,
  type RecordHeader,
  RecordWriter,
  type TableRecord,
} from "./runtime/records.ts";
export {
  type FoldedStack,
  foldedText,
  foldStacks,
  formatStacks,
} from "./runtime/aggregate/folded.ts";
export { flameGraphSvg } from "./runtime/aggregate/flamegraph.ts";
export { printable, printableJson } from "./runtime/printable.ts";
export { AF_INET, AF_INET6, ntop } from "./runtime/ntop.ts";
export { DurationError, parseDuration } from "./runtime/duration.ts";
export { ArgumentError, NotAFunctionError, SizeError } from "./runtime/arguments.ts";
export { TargetError } from "./runtime/process_tree.ts";
export type {
  SyscallEntryEvent,
  SyscallProbeOptions,
  SyscallReturnEvent,
} from "./runtime/providers/syscall.ts";
export type { KernelSyscallArgs, SyscallArgs } from "./runtime/providers/syscall_types.ts";
export type {
  SyscallPatternEntryEvent,
  SyscallPatternReturnEvent,
} from "./runtime/providers/syscall_pattern.ts";
export { syscallName, UnknownArchitectureError } from "./runtime/providers/syscall_numbers.ts";
export type { TracepointEvent } from "./runtime/providers/tracepoint.ts";
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
export type { FileInfo } from "./runtime/providers/io/fileinfo.ts";
export type { Association } from "./runtime/providers/io/waited.ts";
export {
  AIO_SYSCALLS,
  type AioDecoded,
  type AioProbeOptions,
  type AioReapEvent,
  type UringEvent,
  uringOpName,
} from "./runtime/providers/aio/aio.ts";
export type { Iocb, IoEvent, SigSet } from "./runtime/providers/aio/abi.ts";
export { AIO_COUNTERS } from "./runtime/providers/aio/lifecycle.ts";
export type { EventHeader } from "./runtime/codegen/fields.ts";
export { LambdaError } from "./runtime/lambda/ir.ts";
export { UnknownFieldError } from "./runtime/compiler/handler_reads.ts";
export { ProbeNotFoundError } from "./system/tracefs.ts";
export { VerifierError } from "./bpf/program.ts";
export { BpfError, NotSupportedError } from "./bpf/errors.ts";
