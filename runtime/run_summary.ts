/**
 * What a session did: `run()`'s summary, and how it is said on stderr at the end of a run
 * (drops, losses, lost span starts, why it ended).
 *
 * @module
 */
import type { AggregationData } from "./aggregate/data.ts";
import { DEFAULT_RING_BYTES, type RunOptions } from "./run_options.ts";

/** What became of the starts of a span. */
export interface SpanSummary {
  /** The span's `name` option, or "START -> END" from its two probes. */
  name: string;
  /** Starts stored. */
  started: number;
  /** Ends that found their start. */
  matched: number;
  /** Ends that found no start (it came before tracing began, or was lost). */
  unmatched: number;
  /** Starts still waiting for their end when the session stopped. */
  open: number;
  /** Starts lost: refused by the full map, or replaced by a later start of the same key. */
  lost: number;
}

/** Why a session ended ("exited": every `pid` process exited). */
export type StopReason = "duration" | "signal" | "exit" | "command" | "exited" | "aborted";

/** What a session did. */
export interface RunSummary {
  /** Why the session ended. */
  reason: StopReason;
  /** Events delivered to handlers. */
  events: number;
  /** Events the kernel could not queue because the ring buffer was full. */
  dropped: number;
  /** Events delivered, by probe name. */
  byProbe: Record<string, number>;
  /** From the start of the run to its end, in milliseconds. */
  elapsedMs: number;
  /** Exit code of the traced command, when there was one. */
  commandExitCode?: number;
  /** Process id of the traced command, when there was one. */
  commandPid?: number;
  /** The aggregations as they were at the end. */
  aggregations: AggregationData[];
  /** One line per optional probe this kernel lacks, which the session ran without. */
  notes: string[];
  /** What became of each span's starts. */
  spans: SpanSummary[];
  /** Counters providers keep in the kernel (e.g. "aio.submitted"), summed over CPUs. */
  counters: Record<string, number>;
  /**
   * One line per counter that lost something, with its count ("3 AIO requests not timed:
   * ..."): drops are in `dropped`, span starts in `spans`.
   */
  losses: string[];
}

/** Says on stderr what a run lost and, when asked, what it did. */
export function report(s: RunSummary, options: RunOptions): void {
  if (s.reason === "exited") console.error("tsprobe: all traced processes exited");
  if (s.dropped > 0) {
    console.error(
      `tsprobe: ${s.dropped} events were dropped because the ring buffer was full; ` +
        `raise ringBufferBytes (now ${
          options.ringBufferBytes ?? DEFAULT_RING_BYTES
        }) or filter in the kernel`,
    );
  }
  for (const loss of s.losses) console.error(`tsprobe: ${loss}`);
  for (const sp of s.spans.filter((x) => x.lost > 0)) {
    console.error(
      `tsprobe: span '${sp.name}': ${sp.lost} starts lost: its map was full (raise size) or a ` +
        `start was replaced by one with the same key before its end`,
    );
  }
  if (options.summary) {
    console.error(
      `tsprobe: ${s.events} events, ${s.dropped} dropped, ${
        (s.elapsedMs / 1000).toFixed(1)
      } s (${s.reason})`,
    );
  }
}
