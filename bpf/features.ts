/**
 * What this kernel can do, asked once and cached. Every "not supported by this kernel" error
 * comes from here.
 *
 * @module
 */
import { NotSupportedError } from "./errors.ts";
import { exit, mov64 } from "./asm/mod.ts";
import { Program, type ProgramType, VerifierError } from "./program.ts";
import { BpfError } from "./errors.ts";

const answers = new Map<string, boolean>();

function cached(key: string, ask: () => boolean): boolean {
  let a = answers.get(key);
  if (a === undefined) {
    a = ask();
    answers.set(key, a);
  }
  return a;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when a minimal program of `type` loads. */
export function haveProgramType(type: ProgramType): boolean {
  return cached(`prog:${type}`, () => {
    try {
      using _ = Program.load({
        name: "tsp_probe",
        type,
        probe: `feature probe ${type}`,
        instructions: [mov64(0, { imm: 0 }), exit()],
        maps: new Map(),
      });
      return true;
    } catch (e) {
      if (e instanceof VerifierError || e instanceof BpfError) return false;
      throw e;
    }
  });
}

/** True when the kernel has a perf PMU named `name` (kprobe, uprobe). */
export function havePmu(name: string): boolean {
  return cached(`pmu:${name}`, () => exists(`/sys/bus/event_source/devices/${name}/type`));
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
