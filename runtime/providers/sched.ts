/**
 * The sched provider, after DTrace's: `off-cpu` as a task leaves a CPU and `on-cpu` as it gets
 * one back, from the raw tracepoint sched_switch. An on-cpu event is the task's that resumes
 * (its pid, tid and comm; the process filter applies to it) and carries `offcpuNs`, the time
 * since it left, and `kstack`/`ustack` as they were when it left: where it blocked. This is
 * what off-CPU analysis needs (BCC's offcputime): `sched.on("on-cpu").sum((e) => e.offcpuNs,
 * { by: (e) => [e.comm, e.kstack, e.ustack] })`.
 *
 * @module
 */
import { ldx, R0, R6, R7, stx } from "../../bpf/asm/mod.ts";
import { attachRawTracepoint } from "../../bpf/link.ts";
import type { Program } from "../../bpf/program.ts";
import type { ProgramBuilder } from "../codegen/builder.ts";
import {
  type EventField,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
} from "../codegen/fields.ts";
import { probeProgram, stateValueSize, type ThreadState } from "../codegen/probe_program.ts";
import { savedStackFields, saveStacks, STACK_FIELDS, STACK_MAP } from "../codegen/stacks.ts";
import type { ProbeRequest, ProbeSite, SiteContext } from "./provider.ts";
import { describeRequest, type Provider } from "./probe_info.ts";
import { NEXT_TASK, nextPidTgid, nextTaskFields, SWITCH } from "./sched_switch.ts";

/** A task leaves a CPU (the current task at the switch). */
export interface OffCpuEvent extends EventHeader {
  /** The probe. */
  probe: "sched:off-cpu";
  /** True when it was preempted (still runnable), false when it blocked or slept. */
  preempted: boolean;
}

/** A task gets a CPU back: its pid, tid and comm, and how long it was off. */
export interface OnCpuEvent extends EventHeader {
  /** The probe. */
  probe: "sched:on-cpu";
  /** Time since it left a CPU; undefined when that was before tracing began. */
  offcpuNs?: number;
}

/** The sched probes and their events. */
export interface SchedEvents {
  /** A task leaves a CPU. */
  "off-cpu": OffCpuEvent;
  /** A task gets a CPU back. */
  "on-cpu": OnCpuEvent;
}

/** A sched probe name. */
export type SchedProbe = keyof SchedEvents;

const PROBES: readonly SchedProbe[] = ["off-cpu", "on-cpu"];
const OFF_MAP = "sched_off";
/** Saved at off-cpu after the time: the kernel and user stack words. */
const STACK_WORDS = 2;
/**
 * Off-cpu records no on-cpu will pair: the map refused them (full), or replaced one never
 * consumed (the task's switch-in was not seen).
 */
export const OFF_CPU_UNPAIRED = "sched.unpaired";

const attach = (p: Program) => attachRawTracepoint(p, "sched_switch");

function offCpuSite(name: string): ProbeSite {
  return {
    name,
    fields: [
      ...headerFields(),
      field(["preempted"], { type: "int", size: 1, signed: false }, (b: ProgramBuilder, dst) => {
        b.emit(ldx("DW", R0, R6, SWITCH.preempt), stx("B", R7, dst, R0));
      }),
    ],
    constants: [{ path: ["probe"], constant: name }],
    hook: { name: "sched_off_cpu", type: "raw_tracepoint", attach },
    companions: [],
  };
}

function onCpuSite(name: string, ctx: SiteContext): ProbeSite {
  ctx.map(STACK_MAP);
  const map = ctx.map({
    name: OFF_MAP,
    type: "hash",
    keySize: 8,
    valueSize: stateValueSize(STACK_WORDS),
    maxEntries: 65536,
  });
  const save: ThreadState = {
    map,
    mode: "save",
    capacity: STACK_WORDS,
    words: STACK_WORDS,
    fill: saveStacks,
    unpaired: {
      map: ctx.counters,
      index: ctx.counter(OFF_CPU_UNPAIRED, "sched:off-cpu records no on-cpu paired"),
    },
  };
  const load: ThreadState = { map, mode: "load", capacity: STACK_WORDS, key: nextPidTgid };
  const own = new Set(["pid", "tid", "comm", ...STACK_FIELDS]);
  const fields: EventField[] = [
    ...nextTaskFields(),
    ...headerFields().filter((f) => !own.has(f.path[0])),
    ...savedStackFields(8),
    field(["offcpuNs"], { type: "latency" }, latencyFromState()),
  ];
  return {
    name,
    fields,
    constants: [{ path: ["probe"], constant: name }],
    hook: { name: "sched_on_cpu", type: "raw_tracepoint", attach, state: load, subject: NEXT_TASK },
    // The switch-outs of the traced processes, with their stacks, for their switch-ins.
    companions: [{
      name: "sched_off_save",
      type: "raw_tracepoint",
      instructions: probeProgram({ filter: ctx.filter, state: save }),
      attach,
    }],
  };
}

/** A request for sched probe `probe` ("off-cpu", "on-cpu"). */
export function schedRequest(probe: string): ProbeRequest {
  if (!PROBES.includes(probe as SchedProbe)) {
    throw new TypeError(`Unknown sched probe '${probe}': use one of ${PROBES.join(", ")}`);
  }
  const name = `sched:${probe}`;
  return {
    name,
    key: name,
    sites: (ctx) => [probe === "off-cpu" ? offCpuSite(name) : onCpuSite(name, ctx)],
  };
}

/** Tasks leaving and regaining CPUs. */
export const schedProvider: Provider = {
  name: "sched",
  list: (match) =>
    PROBES.filter((p) => match(`sched:${p}`)).map((p) => describeRequest("sched", schedRequest(p))),
};
