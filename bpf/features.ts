/**
 * What this kernel can do, asked once and cached. Every "not supported by this kernel" error
 * comes from here.
 *
 * @module
 */
import { BpfError, NotSupportedError } from "./errors.ts";
import { exit, imm, type Item, mov64, R0, sdiv64 } from "./asm/mod.ts";
import {
  AttachType,
  Program,
  type ProgramSpec,
  type ProgramType,
  VerifierError,
} from "./program.ts";
import { Btf } from "./btf.ts";
import { pathExists } from "./sysinfo.ts";

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

/** True when the kernel has a perf PMU named `name` (kprobe, uprobe). */
export function havePmu(name: string): boolean {
  return cached(`pmu:${name}`, () => pathExists(`/sys/bus/event_source/devices/${name}/type`));
}

/** Throws {@link NotSupportedError} unless kprobes can be attached. */
export function requireKprobes(): void {
  if (!havePmu("kprobe") || !haveProgramType("kprobe")) {
    throw new NotSupportedError("kprobe", "no kprobe PMU; the kernel lacks CONFIG_KPROBES");
  }
}

/** Throws {@link NotSupportedError} unless uprobes can be attached. */
export function requireUprobes(): void {
  if (!havePmu("uprobe")) {
    throw new NotSupportedError("uprobe", "no uprobe PMU; the kernel lacks CONFIG_UPROBE_EVENTS");
  }
}
