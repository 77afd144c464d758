/**
 * What every provider gives the compiler for one probe: the fields its events have (and how
 * the kernel captures each), the program consumers are compiled into and how it attaches,
 * and any program that must run beside it. Providers differ only in where they hook and what
 * their events hold.
 *
 * @module
 */
import type { Item } from "../../bpf/asm/mod.ts";
import type { Link, LinkGroup } from "../../bpf/link.ts";
import type { BpfMap, MapSpec } from "../../bpf/map.ts";
import type { ProgramBuilder } from "../codegen/builder.ts";
import type { Expr } from "../lambda/ir.ts";
import type { Program, ProgramType } from "../../bpf/program.ts";
import type { ConstantField, EventField } from "../codegen/fields.ts";
import type { Filter, FilterSubject, Rounds, ThreadState } from "../codegen/probe_program.ts";

/** What the session hands a provider when it sets up one probe. */
export interface SiteContext {
  /** The session's process filter, for every program of the probe to apply. */
  filter: Filter;
  /** Bytes kept of each string read in the kernel. */
  stringSize: number;
  /** Declares a map the programs refer to by the returned name (same name: same map). */
  map(spec: MapSpec): string;
  /**
   * The slot of a named counter in the session's per-CPU counter map (same name: same slot).
   * `loss` says what a nonzero count lost, for the end of the run ("AIO requests not timed:
   * ..."); counters of what went well have none.
   */
  counter(name: string, loss?: string): number;
  /** The session's per-CPU counter map, for `ProgramBuilder.increment`. */
  counters: string;
  /** The session's per-CPU scratch map (a record R7 can point at in companion programs). */
  scratch: string;
}

/** How a `tracing` program (fentry, fexit) is loaded: against a kernel function. */
export interface TracingTarget {
  /** `expected_attach_type`: fentry or fexit. */
  expectedAttachType?: number;
  /** BTF id of the traced function. */
  attachBtfId?: number;
}

/** One program to load and how to attach it. */
export interface ProgramPlan extends TracingTarget {
  /** Object name, for `bpftool prog list`. */
  name: string;
  type: ProgramType;
  instructions: Item[];
  attach(prog: Program): Link | LinkGroup;
}

/** The program a probe's consumers run in, before the compiler fills its body. */
export interface HookPlan extends TracingTarget {
  name: string;
  type: ProgramType;
  attach(prog: Program): Link | LinkGroup;
  /** Per-thread state to load into R8 (and delete after the body). */
  state?: ThreadState;
  /** Jumps to `skip` for events the probe does not cover, before anything else. */
  guard?: (b: ProgramBuilder, skip: string) => void;
  /** Whose pid and comm the process filter checks, when not the current task's. */
  subject?: FilterSubject;
  /**
   * Runs the consumers once per element of something the event carries (the io_events one
   * io_getevents reaped), in a `loop` callback (see `emitEach`): the element's index is in the
   * stack slot `ProgramBuilder.loopIndex` while captures run, and the context is not.
   */
  repeat?: Rounds;
}

/** A probe ready to compile. */
export interface ProbeSite {
  /** The probe's full name, e.g. "syscall:openat:entry". */
  name: string;
  fields: EventField[];
  constants: ConstantField[];
  hook: HookPlan;
  /** Programs the probe needs besides its hook (e.g. saving arguments at syscall entry). */
  companions: ProgramPlan[];
  /**
   * The hook and companions fitted to what the consumers read, once the compiler knows: `read`
   * holds the paths of the site's fields read, joined by "." ("latencyNs", "args.fd"). A
   * syscall return that reads neither latency nor arguments needs no program at entry.
   */
  fit?(read: ReadonlySet<string>): Pick<ProbeSite, "hook" | "companions">;
  /** Predicates every consumer of the site gets: its events exist only where they hold. */
  requires?: Expr[];
  /**
   * True when predicates (all of which must hold) rule out every event of this site, e.g. a
   * device the site never sees: the compiler then leaves the consumer out of it.
   */
  excludes?: (predicates: readonly Expr[]) => boolean;
  /** Fills maps the programs read (e.g. mount points) once they exist, before attaching. */
  prepare?: (maps: ReadonlyMap<string, BpfMap>) => void;
  /**
   * Upkeep of its maps, about once a second while the session runs and once at its end;
   * returns counts for `RunSummary.counters` (added up, except names ending in "inflight",
   * which are the last value: what was left at the end).
   */
  tick?: (maps: ReadonlyMap<string, BpfMap>) => Record<string, number> | void;
}

/**
 * Thrown by {@link ProbeRequest.sites} when the running kernel lacks what a probe needs (a
 * tracepoint that came in a later version, a configuration option). One line: what is missing,
 * this kernel's version, and what to do.
 */
export class SiteUnavailableError extends Error {
  /** The probe, as the user named it ("aio:uring"). */
  readonly probe: string;
  /** What is missing and what to do, without the probe's name. */
  readonly reason: string;
  constructor(probe: string, reason: string) {
    super(`${probe} is unavailable on this kernel (${Deno.osRelease()}): ${reason}`);
    this.name = "SiteUnavailableError";
    this.probe = probe;
    this.reason = reason;
  }
}

/** A probe the user asked for, set up when the session starts. */
export interface ProbeRequest {
  /** The probe as the user named it, for errors before setup. */
  name: string;
  /**
   * True when the session may run without this probe: where the kernel lacks it
   * ({@link SiteUnavailableError}), it gets no programs, its consumers see nothing, and the
   * session prints a one-line note instead of failing.
   */
  optional?: boolean;
  /** Requests with equal keys are one probe: their consumers share its programs. */
  key: string;
  /**
   * The probe's sites: usually one; several when one probe hooks several places (io:start on
   * request-based and on bio-based devices), each compiled with every consumer.
   */
  sites(ctx: SiteContext): ProbeSite[];
}
