/**
 * What every provider gives the session: for one probe, the programs to load and attach and a
 * decoder for the records they write. Providers differ only in how they find their hook and
 * what their events hold.
 *
 * @module
 */
import type { Item } from "../../bpf/asm/mod.ts";
import type { Link } from "../../bpf/link.ts";
import type { MapSpec } from "../../bpf/map.ts";
import type { Program, ProgramType } from "../../bpf/program.ts";
import type { Filter } from "../codegen/event_program.ts";
import type { RecordLayout } from "../codegen/record.ts";

/** What the session hands a provider when it compiles one probe. */
export interface CompileContext {
  /** Tag written in every record of this probe. */
  probeIndex: number;
  /** The session's process filter, for the probe's programs to apply. */
  filter: Filter;
  /** The session's ring buffer and drop counter maps. */
  output: { events: string; drops: string };
  /** Bytes kept of each string read in the kernel. */
  stringSize: number;
  /** Declares a map the programs refer to by the returned name (same name: same map). */
  map(spec: MapSpec): string;
}

/** One program to load and how to attach it. */
export interface ProgramPlan {
  /** Object name, for `bpftool prog list`. */
  name: string;
  type: ProgramType;
  instructions: Item[];
  attach(prog: Program): Link;
}

/** A probe ready to load: its programs and the decoder of its records. */
export interface CompiledProbe<E = unknown> {
  /** The probe's full name, e.g. "syscall:openat:entry". */
  name: string;
  programs: ProgramPlan[];
  layout: RecordLayout;
  decode(view: DataView, base: number): E;
}

/** A probe the user asked for, compiled when the session starts. */
export interface ProbeRequest<E = unknown> {
  /** The probe as the user named it, for errors before compilation. */
  name: string;
  compile(ctx: CompileContext): CompiledProbe<E>;
}
