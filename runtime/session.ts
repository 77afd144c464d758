/**
 * A tracing session: plans the probes asked for (compiling every lambda), creates maps, loads
 * programs and attaches them (undoing everything on any failure), streams records to handlers
 * and prints aggregations at intervals, until the duration ends, a signal arrives, a handler
 * calls {@link Session.stop}, or a traced command exits; then detaches, drains what is left,
 * reads the aggregations and closes every fd.
 *
 * @module
 */
import { setStackMap, STACK_MAP } from "./codegen/stacks.ts";
import { BpfMap } from "../bpf/map.ts";
import { Program } from "../bpf/program.ts";
import { formatProgram, link as linkProgram } from "../bpf/asm/mod.ts";
import { RingBuffer } from "../bpf/ringbuf.ts";
import type { AggregationData } from "./aggregate/data.ts";
import { TAG_OFFSET } from "./codegen/record.ts";
import { type Plan, plan, SessionMaps } from "./compiler/plan.ts";
import type { AggregationRequest, ConsumerRequest } from "./compiler/requests.ts";
import { DROPPED_COUNTER } from "./compiler/site_compiler.ts";
import { followPrograms } from "./providers/follow.ts";
import { loadParser } from "./lambda/parse.ts";
import { readsNothing } from "./lambda/reads.ts";
import { parseDuration } from "./duration.ts";
import { startStopped, type StoppedChild } from "./child.ts";
import { checkTargets, killDescendants, PidWatch } from "./process_tree.ts";
import { ArgumentError } from "./arguments.ts";
import { tracerPids } from "./host.ts";
import { parseMetricsAddress } from "./metrics/address.ts";
import type { MetricsServer } from "./metrics/server.ts";
import {
  checkRunOptions,
  DEFAULT_RING_BYTES,
  DEFAULT_STRING_SIZE,
  type RunOptions,
} from "./run_options.ts";
import { report, type RunSummary, type StopReason } from "./run_summary.ts";
import { Aggregations } from "./live_maps.ts";
import { KernelObjects } from "./kernel_objects.ts";

export type { Attached, RunOptions } from "./run_options.ts";
export type { RunSummary, SpanSummary, StopReason } from "./run_summary.ts";

/** Called with each event of a probe. */
export type Handler<E> = (event: E) => void;

/**
 * How often the reader looks at the ring buffer: records wake it only in bulk (see
 * `SharedMaps.wakeBytes`), so a few at a time reach their handlers within this.
 */
const POLL_MS = 10;

/** Probes, their consumers and the aggregations they fill, run together. */
export class Session {
  readonly #requests: ConsumerRequest[] = [];
  #stopReason: StopReason | undefined;
  /** Reads an aggregation while the session runs. */
  #live: ((a: AggregationRequest) => AggregationData | undefined) | undefined;
  #clear: ((a: AggregationRequest) => void) | undefined;
  readonly #final = new Map<AggregationRequest, AggregationData>();
  /** @internal Programs of the running session, for listings. */
  programs: Program[] = [];

  /** @internal Adds a consumer: a handler of a stream's events, or an aggregation of them. */
  add(request: ConsumerRequest): void {
    this.#requests.push(request);
  }

  /** Number of consumers added. */
  get size(): number {
    return this.#requests.length;
  }

  /** Ends a running session after the records already read are handled. */
  stop(reason: StopReason = "exit"): void {
    this.#stopReason ??= reason;
  }

  /**
   * @internal An aggregation's data: live while running, as it ended afterwards, undefined
   * before.
   */
  read(a: AggregationRequest): AggregationData | undefined {
    return this.#live?.(a) ?? this.#final.get(a);
  }

  /** @internal Empties an aggregation of a running session. */
  clear(a: AggregationRequest): void {
    this.#clear?.(a);
  }

  #plan(options: RunOptions): Plan {
    if (this.#requests.length === 0) {
      throw new ArgumentError("Nothing to trace: add a probe (e.g. syscall.on(...)) before run()");
    }
    const pids = [options.pid ?? []].flat();
    checkTargets(pids, options.command);
    checkRunOptions(options);
    const traced = pids.length > 0 || options.command !== undefined;
    return plan(this.#requests, {
      filter: {
        comm: options.comm,
        pidsMap: traced ? SessionMaps.pids : undefined,
        exclude: traced || options.traceSelf ? undefined : tracerPids(),
      },
      stringSize: options.stringSize ?? DEFAULT_STRING_SIZE,
      histogramStats: options.metrics !== undefined,
      ringBytes: options.ringBufferBytes ?? DEFAULT_RING_BYTES,
      follow: options.command !== undefined ? followPrograms : undefined,
    });
  }

  /**
   * What would run, without loading anything: per probe the fields captured, what runs in
   * the kernel and what in JavaScript, the maps, and each program as BPF assembly.
   */
  async explain(options: RunOptions = {}): Promise<string> {
    await loadParser();
    const p = this.#plan(options);
    const out = p.notes.map((note) => `note: ${note}`);
    // What each pass made: the sites streams resolved to, the consumers lowered onto each,
    // the record it captures, then the maps and the programs emitted.
    for (const { site, consumers } of p.sites) {
      out.push(`probe ${site.name} (program ${site.programs.at(-1)!.name})`);
      for (const c of consumers) {
        const where = c.action.kind === "stream" ? "JavaScript" : "kernel";
        out.push(`  [${where}] ${c.describe}`);
        if (c.action.kind !== "stream") continue;
        const decoded = site.decoded.get(c.action.tag)!.map((f) =>
          `${f.event.join(".")}${
            f.event.join(".") === f.field.path.join(".") ? "" : ` = ${f.field.path.join(".")}`
          } @${f.offset} (${f.field.decoding.type})`
        );
        out.push(`    decoded from the record: ${decoded.join(", ") || "nothing"}`);
      }
      const fields = site.captured.map((c) => `${c.path} (${c.size} B)`).join(", ");
      out.push(`  captured in the kernel: ${fields || "nothing"}`);
    }
    for (const s of p.spans) out.push(`span ${s.name}: starts kept in map ${s.plan.map}`);
    out.push("maps:");
    for (const m of p.maps) {
      out.push(
        `  ${m.name}: ${m.type}, key ${m.keySize} B, value ${m.valueSize} B, ${m.maxEntries} entries`,
      );
    }
    for (const { plan: prog, probe } of p.programs) {
      const linked = linkProgram(prog.instructions);
      out.push(
        `program ${prog.name} (${prog.type}, ${probe}, ${linked.instructions.length} insns):`,
      );
      out.push(formatProgram(linked));
    }
    return out.join("\n");
  }

  /** Compiles, loads and attaches every probe, streams events, and cleans up. */
  async run(options: RunOptions = {}): Promise<RunSummary> {
    if (this.#requests.some(needsParser)) await loadParser();
    const p = this.#plan(options);
    const durationMs = options.duration === undefined ? Infinity : parseDuration(options.duration);
    const intervalMs = options.interval === undefined
      ? Infinity
      : parseDuration(options.interval, true);
    this.#stopReason = undefined;
    this.#final.clear();
    const started = performance.now();
    const resources = new KernelObjects();
    let child: StoppedChild | undefined;
    const maps = new Map<string, BpfMap>();
    const onSignal = () => this.stop("signal");
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    let metrics: MetricsServer | undefined;
    try {
      const ring = p.streams.length
        ? resources.own(
          new RingBuffer(SessionMaps.events, options.ringBufferBytes ?? DEFAULT_RING_BYTES),
        )
        : undefined;
      if (ring) maps.set(SessionMaps.events, ring.map);
      for (const spec of p.maps) maps.set(spec.name, resources.own(BpfMap.create(spec)));
      await setStackMap(maps.get(STACK_MAP.name));
      for (const prepare of p.prepare) prepare(maps);
      const loaded = p.programs.map(({ plan, probe }) =>
        resources.own(Program.load({ ...plan, probe, maps }))
      );
      this.programs = loaded;
      const pidsMap = maps.get(SessionMaps.pids);
      const one = new Uint8Array(8);
      one[0] = 1;
      const pidKey = (pid: number) => new Uint8Array(new Uint32Array([pid]).buffer);
      const pids = [options.pid ?? []].flat();
      for (const pid of pids) pidsMap!.update(pidKey(pid), one);
      const watched = pids.length ? resources.own(new PidWatch(pids)) : undefined;
      if (options.command) {
        child = await startStopped(options.command);
        pidsMap!.update(pidKey(child.pid), one);
      }
      // Ends before starts (returns before entries, completions before issues): a start seen
      // while its end was not attached yet would wait for an end that never comes.
      for (let i = loaded.length - 1; i >= 0; i--) {
        resources.link(p.programs[i].plan.attach(loaded[i]));
      }
      const aggregations = new Aggregations(p, maps);
      this.#live = (a) => aggregations.read(a);
      this.#clear = (a) => aggregations.clear(a);
      const counts = new Array<number>(p.streams.length).fill(0);
      const ticked = new TickCounts();
      const byProbe = () => {
        const events: Record<string, number> = {};
        p.streams.forEach((s, i) => events[s.probe] = (events[s.probe] ?? 0) + counts[i]);
        return events;
      };
      const counters = (): Record<string, number> => ({
        ...Object.fromEntries(
          [...p.counters].map(([name, slot]) => [name, aggregations.counter(slot)]),
        ),
        ...ticked.counts,
      });
      // Loaded only here: a session without metrics starts without the server's modules.
      metrics = options.metrics === undefined
        ? undefined
        : (await import("./metrics/server.ts")).MetricsServer.start(
          parseMetricsAddress(options.metrics),
          {
            aggregations: () => p.aggregations.map((a) => aggregations.read(a.request)!),
            events: byProbe,
            dropped: () => aggregations.counter(DROPPED_COUNTER),
            counters: () => ({ values: counters(), losses: [...p.losses.keys()] }),
            spans: () => aggregations.spans(),
          },
        );
      for (const note of p.notes) console.error(`tsprobe: note: ${note}`);
      signals.forEach((s) => Deno.addSignalListener(s, onSignal));
      options.signal?.addEventListener("abort", () => this.stop("aborted"), { once: true });
      options.onAttached?.({
        // The user's probes, not the session's own programs (following a command's children).
        probes: [...new Set(p.sites.map((s) => s.site.name))],
        programs: loaded.length,
        metrics: metrics?.url,
      });
      child?.resume();

      const dispatch = (view: DataView, off: number) => {
        // exit() stops delivery at once, like DTrace's: what is still queued is not handed on.
        if (this.#stopReason === "exit") return;
        const tag = view.getUint32(off + TAG_OFFSET, true);
        const stream = p.streams[tag];
        counts[tag]++;
        stream.handler(stream.decode(view, off));
      };
      const deadline = started + durationMs;
      let nextInterval = started + intervalMs;
      let nextTick = started + 1000;
      while (this.#stopReason === undefined) {
        const now = performance.now();
        if (now >= deadline) {
          this.stop("duration");
          break;
        }
        if (child?.exited) {
          this.stop("command");
          break;
        }
        if (watched && !watched.anyAlive()) {
          this.stop("exited");
          break;
        }
        if (now >= nextTick) {
          ticked.add(p.tick.map((tick) => tick(maps)));
          aggregations.retain();
          nextTick = now + 1000;
        }
        if (now >= nextInterval) {
          aggregations.interval(options);
          nextInterval += intervalMs;
        }
        const waitMs = Math.max(
          1,
          Math.min(ring ? POLL_MS : 100, Math.ceil(Math.min(deadline, nextInterval) - now)),
        );
        if (ring) {
          await ring.wait(waitMs);
          ring.drain(dispatch);
        } else {
          await new Promise((r) => setTimeout(r, waitMs));
        }
      }
      // Detach first so nothing new arrives, then hand over what is already queued.
      resources.unlink();
      ring?.drain(dispatch);
      ticked.add(p.tick.map((tick) => tick(maps)));
      for (const a of p.aggregations) this.#final.set(a.request, aggregations.read(a.request)!);
      this.#live = this.#clear = undefined;
      const final = counters();
      const summary: RunSummary = {
        reason: this.#stopReason ?? "exit",
        events: counts.reduce((a, b) => a + b, 0),
        dropped: aggregations.counter(DROPPED_COUNTER),
        byProbe: byProbe(),
        elapsedMs: performance.now() - started,
        commandPid: child?.pid,
        commandExitCode: child?.exited ? (await child.status).code : undefined,
        aggregations: [...this.#final.values()],
        notes: p.notes,
        spans: aggregations.spans(),
        counters: final,
        losses: [...p.losses].filter(([name]) => final[name] > 0)
          .map(([name, what]) => `${final[name]} ${what} (${name})`),
      };
      if (options.printAggregations ?? true) aggregations.print(summary.aggregations);
      report(summary, options);
      return summary;
    } finally {
      // Before the maps close: a scrape answered now still reads open maps.
      await metrics?.close();
      await setStackMap(undefined);
      this.#live = this.#clear = undefined;
      signals.forEach((s) => Deno.removeSignalListener(s, onSignal));
      // A command still running when the session ends goes, with the descendants it started
      // (the kernel's pid filter knows them all).
      if (child && !child.exited) killTraced(maps.get(SessionMaps.pids), child);
      resources.close();
      child?.kill();
    }
  }
}

/** Counts providers' upkeep reports: summed, except "...inflight" (the last report wins). */
class TickCounts {
  readonly counts: Record<string, number> = {};
  add(reports: Array<Record<string, number> | void>): void {
    for (const report of reports) {
      for (const [name, n] of Object.entries(report ?? {})) {
        this.counts[name] = name.endsWith("inflight") ? n : (this.counts[name] ?? 0) + n;
      }
    }
  }
}

/**
 * Whether planning a consumer parses a lambda: not for `() => ...` handlers, nor for an
 * aggregation without a value or key (`count()`), which start sooner without the parser.
 */
function needsParser(r: ConsumerRequest): boolean {
  const source = r.source;
  if (source.kind === "span" || source.predicates.length) return true;
  if (r.kind === "aggregate") {
    return r.aggregation.value !== undefined || r.aggregation.by !== undefined;
  }
  return !readsNothing(r.handler as () => void);
}

/**
 * Kills the traced command and those pids of the filter map that are still its descendants;
 * never a `pid` option's process, nor a process that reused the pid of one that exited.
 */
function killTraced(pids: BpfMap | undefined, child: StoppedChild): void {
  const followed = [...pids?.keys() ?? []].map((k) => new DataView(k.buffer).getUint32(0, true));
  killDescendants(followed, child.pid);
  child.kill();
}
