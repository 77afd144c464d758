/**
 * How a session runs: `run()`'s options, their defaults, and the checks of their shape and
 * size made before anything loads.
 *
 * @module
 */
import type { AggregationData } from "./aggregate/data.ts";
import { ArgumentError, checkSize } from "./arguments.ts";
import { executableProblem } from "./executable.ts";
import { TargetError } from "./process_tree.ts";
import { parseMetricsAddress } from "./metrics/address.ts";

/** How a session runs. */
export interface RunOptions {
  /** Stop after this long ("5s", "2m", or milliseconds). Default: until Ctrl-C. */
  duration?: string | number;
  /** Trace only these processes (thread group ids); the session ends once all have exited. */
  pid?: number | number[];
  /** Trace only tasks with this command name (at most 15 characters). */
  comm?: string;
  /** Start this command, trace it and its descendants, and stop when it exits. */
  command?: string[];
  /**
   * Trace the tracer too: this process (and the `probe` that started it). Default false:
   * without `pid` or `command` every process but the tracer's is traced, so its own reads,
   * writes and page faults stay out of the results.
   */
  traceSelf?: boolean;
  /** Ring buffer size in bytes, a power of two from 4096 to 2^30 (default 8 MiB). */
  ringBufferBytes?: number;
  /** Bytes kept of each string read in the kernel, 1 to 4096 (default 256). */
  stringSize?: number;
  /** Stops the session when aborted. */
  signal?: AbortSignal;
  /** Print the end-of-run line on stderr (default: only when events were dropped). */
  summary?: boolean;
  /**
   * Called once every probe is attached, before the traced command (if any) resumes, with
   * what was attached.
   */
  onAttached?: (attached: Attached) => void;
  /** Print (or pass to `onInterval`) the aggregations this often ("1s", or milliseconds). */
  interval?: string | number;
  /** Receives the aggregations each interval instead of printing them. */
  onInterval?: (aggregations: AggregationData[]) => void;
  /** Print the aggregations at the end (default true), as bpftrace and DTrace do. */
  printAggregations?: boolean;
  /**
   * Serve the aggregations and the session's health as Prometheus metrics at `HOST:PORT`
   * (`"127.0.0.1:9464"`), `/metrics`, read from the kernel's maps at each scrape.
   */
  metrics?: string;
}

export const DEFAULT_STRING_SIZE = 256;
export const DEFAULT_RING_BYTES = 8 << 20;
/** Longest string a session reads: PATH_MAX. */
const MAX_STRING_SIZE = 4096;
/** Ring buffer sizes: a page to 1 GiB. */
const MIN_RING_BYTES = 4096;
const MAX_RING_BYTES = 1 << 30;

/** run() options of the wrong shape or size, checked before anything loads. */
export function checkRunOptions(options: RunOptions): void {
  const { comm, command } = options as Record<string, unknown>;
  if (comm !== undefined && (typeof comm !== "string" || comm === "")) {
    throw new ArgumentError(`comm ${JSON.stringify(comm)} is not valid: give a command name`);
  }
  if (
    command !== undefined &&
    !(Array.isArray(command) && command.length && command.every((a) => typeof a === "string"))
  ) {
    throw new ArgumentError(
      `command ${JSON.stringify(command)} is not valid: give the program and its arguments as ` +
        `an array of strings, like ["ls", "-l"]`,
    );
  }
  if (options.metrics !== undefined) parseMetricsAddress(options.metrics);
  const problem = command === undefined ? undefined : executableProblem(command[0]);
  if (problem) throw new TargetError(`command: ${problem}`);
  if (options.stringSize !== undefined) {
    checkSize("stringSize", options.stringSize, { max: MAX_STRING_SIZE });
  }
  if (options.ringBufferBytes !== undefined) {
    checkSize("ringBufferBytes", options.ringBufferBytes, {
      min: MIN_RING_BYTES,
      max: MAX_RING_BYTES,
      powerOfTwo: true,
    });
  }
}

/** What a run attached, for a banner ("tracing 2 probes ..."). */
export interface Attached {
  /** The probes, by name ("syscall:read:entry"), each once. */
  probes: string[];
  /** Programs loaded and attached for them (a probe may need several). */
  programs: number;
  /** Where metrics are served (`http://HOST:PORT/metrics`), with the `metrics` option. */
  metrics?: string;
}

/**
 * The line a tool prints on stderr once tracing has begun, like bpftrace's "Attaching N
 * probes..." and BCC's "Tracing... Hit Ctrl-C to end.": what is traced, for how long, how to
 * stop.
 */
export function attachedBanner(
  tool: string,
  attached: Attached,
  options: Pick<RunOptions, "duration" | "command" | "pid">,
): string {
  const shown = attached.probes.slice(0, 3).join(", ") +
    (attached.probes.length > 3 ? `, +${attached.probes.length - 3} more` : "");
  const who = options.command
    ? "the command"
    : options.pid !== undefined
    ? `pid ${[options.pid].flat().join(", ")}`
    : "every process";
  const until = options.command
    ? "until it exits or Ctrl-C"
    : options.duration !== undefined
    ? `for ${options.duration} (Ctrl-C to end sooner)`
    : "until Ctrl-C";
  const n = attached.probes.length;
  const served = attached.metrics ? `; metrics at ${attached.metrics}` : "";
  return `${tool}: tracing ${who} at ${n} probe${n === 1 ? "" : "s"} (${shown}), ${until}${served}`;
}
