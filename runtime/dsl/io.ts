/**
 * The `io` provider of the scripting surface, and {@link requestCreated}.
 *
 * @module
 */
import type { Handler } from "../session.ts";
import type { Stream } from "../stream.ts";
import {
  type IoEvents,
  type IoProbe,
  ioRequest,
  requestCreationTracepoint,
} from "../providers/io/io.ts";
import { on } from "./global.ts";
import { tracepoint, type TracepointEventOf } from "./tracepoint.ts";

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
 * import { io, run } from "../dsl.ts";
 * io.on("done").hist((e) => e.latencyNs! / 1000, { by: (e) => e.dev.dev_statname });
 * await run({ duration: "10s" });
 * ```
 */
export const io: IoProvider = {
  on<P extends IoProbe>(probe: P, handler?: Handler<IoEvents[P]>): Stream<IoEvents[P]> {
    return on(`io.on("${probe}")`, handler, () => ioRequest(probe));
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
