/**
 * A tracing session: compiles the probes asked for, creates maps, loads programs and attaches
 * them (undoing everything on any failure), streams records to handlers until the duration
 * ends, a signal arrives, a handler calls {@link Session.stop}, or a traced command exits;
 * then detaches, drains what is left and closes every fd.
 *
 * @module
 */
import { BpfMap, type MapSpec } from "../bpf/map.ts";
import { Program } from "../bpf/program.ts";
import { attachTracepoint, type Link } from "../bpf/link.ts";
import { RingBuffer } from "../bpf/ringbuf.ts";
import type { Filter } from "./codegen/event_program.ts";
import { followProgram } from "./codegen/follow_program.ts";
import { Header } from "./codegen/record.ts";
import type { CompiledProbe, ProbeRequest } from "./providers/provider.ts";
import { tracepointFormat } from "./providers/tracepoint.ts";
import { parseDuration } from "./duration.ts";
import { startStopped, type StoppedChild } from "./child.ts";

/** How a session runs. */
export interface RunOptions {
  /** Stop after this long ("5s", "2m", or milliseconds). Default: until Ctrl-C. */
  duration?: string | number;
  /** Trace only these processes (thread group ids). */
  pid?: number | number[];
  /** Trace only tasks with this command name (at most 15 characters). */
  comm?: string;
  /** Start this command, trace it and its descendants, and stop when it exits. */
  command?: string[];
  /** Ring buffer size in bytes, a power of two (default 8 MiB). */
  ringBufferBytes?: number;
  /** Bytes kept of each string read in the kernel (default 256). */
  stringSize?: number;
  /** Stops the session when aborted. */
  signal?: AbortSignal;
  /** Print the end-of-run line on stderr (default: only when events were dropped). */
  summary?: boolean;
  /** Called once every probe is attached, before the traced command (if any) resumes. */
  onAttached?: () => void;
}

/** Why a session ended. */
export type StopReason = "duration" | "signal" | "exit" | "command" | "aborted";

/** What a session did. */
export interface RunSummary {
  reason: StopReason;
  /** Events delivered to handlers. */
  events: number;
  /** Events the kernel could not queue because the ring buffer was full. */
  dropped: number;
  /** Events delivered, by probe name. */
  byProbe: Record<string, number>;
  elapsedMs: number;
  /** Exit code of the traced command, when there was one. */
  commandExitCode?: number;
  /** Process id of the traced command, when there was one. */
  commandPid?: number;
}

/** Called with each event of a probe. */
export type Handler<E> = (event: E) => void;

interface Registration {
  request: ProbeRequest<unknown>;
  handler: Handler<unknown>;
}

const EVENTS_MAP = "events";
const DROPS_MAP = "drops";
const PIDS_MAP = "pids";

/** Probes and their handlers, run together. */
export class Session {
  readonly #registrations: Registration[] = [];
  #stopReason: StopReason | undefined;
  /** Programs of the running session, for listings. */
  programs: Program[] = [];

  /** Adds a probe and the handler of its events. */
  add<E>(request: ProbeRequest<E>, handler: Handler<E>): void {
    this.#registrations.push({ request, handler: handler as Handler<unknown> });
  }

  /** Number of probes added. */
  get size(): number {
    return this.#registrations.length;
  }

  /** Ends a running session after the records already read are handled. */
  stop(reason: StopReason = "exit"): void {
    this.#stopReason ??= reason;
  }

  /** Compiles, loads and attaches every probe, streams events, and cleans up. */
  async run(options: RunOptions = {}): Promise<RunSummary> {
    if (this.#registrations.length === 0) {
      throw new Error("Nothing to trace: add a probe (e.g. syscall.on(...)) before run()");
    }
    const durationMs = options.duration === undefined ? Infinity : parseDuration(options.duration);
    const stringSize = options.stringSize ?? 256;
    this.#stopReason = undefined;
    const started = performance.now();
    const resources = new Resources();
    let child: StoppedChild | undefined;
    const onSignal = () => this.stop("signal");
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    try {
      const ring = resources.own(new RingBuffer(EVENTS_MAP, options.ringBufferBytes ?? 8 << 20));
      const maps = new Map<string, BpfMap>([[EVENTS_MAP, ring.map]]);
      const declare = (spec: MapSpec): string => {
        if (!maps.has(spec.name)) maps.set(spec.name, resources.own(BpfMap.create(spec)));
        return spec.name;
      };
      declare({ name: DROPS_MAP, type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1 });
      const filter: Filter = { comm: options.comm };
      const pids = [options.pid ?? []].flat();
      if (pids.length || options.command) {
        filter.pidsMap = declare({
          name: PIDS_MAP,
          type: "hash",
          keySize: 4,
          valueSize: 8,
          maxEntries: 8192,
        });
      }
      const probes: CompiledProbe<unknown>[] = this.#registrations.map((r, probeIndex) =>
        r.request.compile({
          probeIndex,
          filter,
          output: { events: EVENTS_MAP, drops: DROPS_MAP },
          stringSize,
          map: declare,
        })
      );
      const plans = probes.flatMap((p) => p.programs.map((plan) => ({ plan, probe: p.name })));
      if (options.command) {
        const fork = tracepointFormat("sched", "sched_process_fork");
        const childPid = fork.fields.find((f) => f.name === "child_pid")!;
        plans.push({
          probe: "follow descendants",
          plan: {
            name: "tsp_follow",
            type: "tracepoint",
            instructions: followProgram(PIDS_MAP, childPid.offset),
            attach: (p) => attachTracepoint(p, fork.id, "sched:sched_process_fork"),
          },
        });
      }
      const loaded = plans.map(({ plan, probe }) =>
        resources.own(Program.load({ ...plan, probe, maps }))
      );
      this.programs = loaded;
      const pidsMap = maps.get(PIDS_MAP);
      const one = new Uint8Array(8);
      one[0] = 1;
      const pidKey = (pid: number) => new Uint8Array(new Uint32Array([pid]).buffer);
      for (const pid of pids) pidsMap!.update(pidKey(pid), one);
      if (options.command) {
        child = await startStopped(options.command);
        pidsMap!.update(pidKey(child.pid), one);
      }
      loaded.forEach((prog, i) => resources.link(plans[i].plan.attach(prog)));
      signals.forEach((s) => Deno.addSignalListener(s, onSignal));
      options.signal?.addEventListener("abort", () => this.stop("aborted"), { once: true });
      options.onAttached?.();
      child?.resume();

      const counts = new Array<number>(probes.length).fill(0);
      const handlers = this.#registrations.map((r) => r.handler);
      const dispatch = (view: DataView, off: number) => {
        const index = view.getUint32(off + Header.probe, true);
        counts[index]++;
        handlers[index](probes[index].decode(view, off));
      };
      const deadline = started + durationMs;
      while (this.#stopReason === undefined) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.stop("duration");
          break;
        }
        if (child?.exited) {
          this.stop("command");
          break;
        }
        await ring.wait(Math.max(1, Math.min(100, Math.ceil(left))));
        ring.drain(dispatch);
      }
      // Detach first so nothing new arrives, then hand over what is already queued.
      resources.unlink();
      ring.drain(dispatch);
      const dropped = Number(
        BpfMap.sumPerCpu(maps.get(DROPS_MAP)!.lookup(new Uint8Array(4))!, 8),
      );
      const summary: RunSummary = {
        reason: this.#stopReason ?? "exit",
        events: counts.reduce((a, b) => a + b, 0),
        dropped,
        byProbe: Object.fromEntries(probes.map((p, i) => [p.name, counts[i]])),
        elapsedMs: performance.now() - started,
        commandPid: child?.pid,
        commandExitCode: child?.exited ? (await child.status).code : undefined,
      };
      report(summary, options);
      return summary;
    } finally {
      signals.forEach((s) => Deno.removeSignalListener(s, onSignal));
      resources.close();
      child?.kill();
    }
  }
}

function report(s: RunSummary, options: RunOptions): void {
  if (s.dropped > 0) {
    console.error(
      `tsprobe: ${s.dropped} events were dropped because the ring buffer was full; ` +
        `raise ringBufferBytes (now ${options.ringBufferBytes ?? 8 << 20}) or filter in the kernel`,
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

/** Kernel objects of a session, closed in reverse order of creation: links, programs, maps. */
class Resources {
  readonly #owned: Disposable[] = [];
  readonly #links: Link[] = [];

  own<T extends Disposable>(x: T): T {
    this.#owned.push(x);
    return x;
  }

  link(l: Link): void {
    this.#links.push(l);
  }

  unlink(): void {
    while (this.#links.length) this.#links.pop()!.close();
  }

  close(): void {
    this.unlink();
    while (this.#owned.length) this.#owned.pop()![Symbol.dispose]();
  }
}
