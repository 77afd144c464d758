/**
 * What this kernel can do, asked once and cached. Every "not supported by this kernel" error
 * comes from here.
 *
 * @module
 */
import { BpfError, NotSupportedError } from "./errors.ts";
import {
  call,
  exit,
  imm,
  type Item,
  label,
  ldFunc,
  mov64,
  R0,
  R1,
  R2,
  R3,
  R4,
  sdiv64,
} from "./asm/mod.ts";
import {
  AttachType,
  Program,
  type ProgramSpec,
  type ProgramType,
  VerifierError,
} from "./program.ts";
import { Btf } from "./btf.ts";
import { pathExists } from "../system/files.ts";

const answers = new Map<string, boolean>();

function cached(key: string, ask: () => boolean): boolean {
  let a = answers.get(key);
  if (a === undefined) {
    a = ask();
    answers.set(key, a);
  }
  return a;
}

/** True when a program loads with these settings (by default a minimal `return 0`). */
function loads(
  spec: Pick<ProgramSpec, "type" | "expectedAttachType" | "attachBtfId">,
  instructions: Item[] = [mov64(R0, imm(0)), exit()],
): boolean {
  try {
    using _ = Program.load({
      ...spec,
      name: "tsp_probe",
      probe: `feature probe ${spec.type}`,
      instructions,
      maps: new Map(),
    });
    return true;
  } catch (e) {
    if (e instanceof VerifierError || e instanceof BpfError) return false;
    throw e;
  }
}

/** True when a minimal program of `type` loads. */
export function haveProgramType(type: ProgramType): boolean {
  return cached(`prog:${type}`, () => loads({ type }));
}

/**
 * True when the verifier takes signed division (`s/=`, `s%=`: BPF ISA v4, kernel 6.6+). Older
 * kernels refuse the instruction's nonzero offset ("BPF_ALU uses reserved fields").
 */
export function haveSignedDivision(): boolean {
  return cached("sdiv", () =>
    loads({ type: "tracepoint" }, [
      mov64(R0, imm(-7)),
      sdiv64("DIV", R0, imm(2)),
      sdiv64("MOD", R0, imm(2)),
      exit(),
    ]));
}

/** True when the `loop` helper (5.17+) and its callback load: one round that returns 0. */
export function haveLoop(): boolean {
  return cached("loop", () =>
    loads({ type: "tracepoint" }, [
      mov64(R1, imm(1)),
      ldFunc(R2, "callback"),
      mov64(R3, imm(0)),
      mov64(R4, imm(0)),
      call("loop"),
      mov64(R0, imm(0)),
      exit(),
      label("callback"),
      mov64(R0, imm(0)),
      exit(),
    ]));
}

/** Throws {@link NotSupportedError} unless the `loop` helper can be used. */
export function requireLoop(): void {
  if (!haveLoop()) {
    throw new NotSupportedError(
      "bpf_loop",
      "AIO requests are tracked in batches with the loop helper, which needs kernel 5.17+",
      "trace the AIO syscalls (syscall:io_submit, syscall:io_getevents) instead",
    );
  }
}

/**
 * True when fentry programs load: a `tracing` program against `vfs_read`'s BTF id. Kernels
 * built without the BPF trampoline, or that lock it down, refuse this (EPERM, ENOTSUPP).
 */
export function haveFentry(): boolean {
  return cached("fentry", () => {
    const func = Btf.vmlinux().find("vfs_read", "func");
    return func !== undefined &&
      loads({ type: "tracing", expectedAttachType: AttachType.trace_fentry, attachBtfId: func.id });
  });
}

/** Throws {@link NotSupportedError} unless fentry/fexit programs can be loaded. */
export function requireFentry(): void {
  if (!haveFentry()) {
    throw new NotSupportedError(
      "fentry",
      "a tracing program against vfs_read was refused; the kernel lacks the BPF trampoline",
    );
  }
}

/**
 * The BTF id a `tp_btf` program is loaded against for raw tracepoint `name`: its
 * `btf_trace_<name>` typedef; undefined when the kernel has no BTF or no such tracepoint.
 */
export function btfTracepointId(name: string): number | undefined {
  try {
    return Btf.vmlinux().find(`btf_trace_${name}`, "typedef")?.id;
  } catch {
    return undefined;
  }
}

/**
 * True when BTF-typed raw tracepoint programs (`tp_btf`, 5.5+) load: their context's pointers
 * are typed, so a program loads members directly instead of calling bpf_probe_read_kernel.
 */
export function haveBtfTracepoints(): boolean {
  return cached("tp_btf", () => {
    const id = btfTracepointId("sched_switch");
    return id !== undefined &&
      loads({ type: "tracing", expectedAttachType: AttachType.trace_raw_tp, attachBtfId: id });
  });
}

/** True when the kernel has a perf PMU named `name` (kprobe, uprobe). */
export function havePmu(name: string): boolean {
  return cached(`pmu:${name}`, () => pathExists(`/sys/bus/event_source/devices/${name}/type`));
}

/** True when kprobes can be attached: a kprobe PMU and the kprobe program type. */
export function haveKprobes(): boolean {
  return havePmu("kprobe") && haveProgramType("kprobe");
}

/** Throws {@link NotSupportedError} unless kprobes can be attached. */
export function requireKprobes(): void {
  if (!haveKprobes()) {
    throw new NotSupportedError("kprobe", "no kprobe PMU; the kernel lacks CONFIG_KPROBES");
  }
}

/** Throws {@link NotSupportedError} unless uprobes can be attached. */
export function requireUprobes(): void {
  if (!havePmu("uprobe")) {
    throw new NotSupportedError("uprobe", "no uprobe PMU; the kernel lacks CONFIG_UPROBE_EVENTS");
  }
}
