/**
 * The `tracepoint` provider of the scripting surface.
 *
 * @module
 */
import type { Stream } from "../stream.ts";
import { type TracepointEvent, tracepointRequest } from "../providers/tracepoint.ts";
import { tracepointPatternRequest } from "../providers/tracepoint_pattern.ts";
import type { TracepointArgs } from "../providers/tracepoint_types.ts";
import { hasGlob } from "../../system/glob.ts";
import { type Glob, stream } from "./global.ts";

/**
 * The event type of a tracepoint name ("block:block_rq_issue"); for a pattern ("block:*"),
 * `args` are loose: which fields all matches share is known only to the running kernel.
 */
export type TracepointEventOf<N extends string> = TracepointEvent<
  N extends Glob ? Record<string, unknown>
    : N extends keyof TracepointArgs ? TracepointArgs[N]
    : Record<string, unknown>
>;

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
 * import { run, tracepoint } from "../dsl.ts";
 * tracepoint("block:block_rq_issue").count((e) => e.args.dev);
 * await run({ duration: "5s" });
 * ```
 *
 * @example Which block tracepoints fire, per device
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, tracepoint } from "../dsl.ts";
 * tracepoint("block:block_rq_*").count((e) => [e.probe, e.args.dev as number]);
 * await run({ duration: "5s" });
 * ```
 */
export function tracepoint<N extends string>(name: N): Stream<TracepointEventOf<N>> {
  return stream(hasGlob(name) ? tracepointPatternRequest(name) : tracepointRequest(name));
}
