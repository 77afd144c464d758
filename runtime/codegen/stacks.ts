/**
 * Kernel and user stacks as event fields, `kstack` and `ustack`, captured in the kernel as ids
 * into a stack-trace map (`bpf_get_stackid`), so they are cheap integers in records and
 * usable as aggregation keys that stay in the kernel. JavaScript sees them named, leaf first
 * ("vfs_read+20"), looked up in that map while the session runs (see `system/symbolize.ts`).
 * A stack the kernel could not record (the map full, no user context) is empty.
 *
 * @module
 */
import {
  alu32,
  alu64,
  call,
  imm,
  ja,
  jmp,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R6,
  R7,
  R8,
  type Reg,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import type { BpfMap, MapSpec } from "../../bpf/map.ts";
import type { ProgramBuilder } from "./builder.ts";
import type { EventField } from "./fields.ts";

/** Frames kept per stack (the kernel's default `perf_event_max_stack` is 127). */
const MAX_FRAMES = 127;
/** `BPF_F_USER_STACK`: the user stack instead of the kernel's. */
const USER_STACK = 1 << 8;

/** The session's stack-trace map: distinct stacks by id. */
export const STACK_MAP: MapSpec = {
  name: "stacks",
  type: "stack_trace",
  keySize: 4,
  valueSize: 8 * MAX_FRAMES,
  maxEntries: 16384,
};

/** The stack fields' names, for the compiler to declare {@link STACK_MAP} when one is read. */
export const STACK_FIELDS: readonly string[] = ["kstack", "ustack"];

let active: BpfMap | undefined;
/**
 * The symbolizer, loaded by the first session that records stacks: its ELF and kallsyms
 * readers are a tenth of what a one-liner loads to start, and most sessions read no stack.
 */
let names: typeof import("../../system/symbolize.ts") | undefined;

/**
 * The map the running session's stack ids point into (undefined when none runs); with a map,
 * loads the symbolizer that names its frames.
 */
export async function setStackMap(map: BpfMap | undefined): Promise<void> {
  if (map) names ??= await import("../../system/symbolize.ts");
  active = map;
}

/** The return addresses of stack `id`, leaf first; none when unknown. */
function addresses(id: number): bigint[] {
  if (!active || id < 0) return [];
  const value = active.lookup(new Uint8Array(new Uint32Array([id]).buffer));
  if (!value) return [];
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i < MAX_FRAMES; i++) {
    const addr = view.getBigUint64(8 * i, true);
    if (addr === 0n) break;
    out.push(addr);
  }
  return out;
}

/** Stores `bpf_get_stackid(ctx, stacks, flags)` (R6: the context) at `reg + dst` as s64. */
function stackId(b: ProgramBuilder, reg: Reg, dst: number, flags: number): void {
  b.emit(
    mov64(R1, R6),
    ldMap(R2, STACK_MAP.name),
    mov64(R3, imm(flags)),
    call("get_stackid"),
    stx("DW", reg, dst, R0),
  );
}

/** The current kernel stack's id at `reg + dst`. */
function kernelStack(b: ProgramBuilder, reg: Reg, dst: number): void {
  stackId(b, reg, dst, 0);
}

/** The current process id and user stack id at `reg + dst` (all ones for no stack). */
function userStack(b: ProgramBuilder, reg: Reg, dst: number): void {
  const done = b.fresh("ustack_done");
  stackId(b, reg, dst, USER_STACK); // -1 (all ones) when there is none
  b.emit(jmp("JSLT", R0, imm(0), done), call("get_current_pid_tgid"));
  b.emit(alu64("RSH", R0, imm(32)), alu64("LSH", R0, imm(32)), ldx("DW", R1, reg, dst));
  b.emit(alu32("MOV", R1, R1), alu64("OR", R0, R1), stx("DW", reg, dst, R0)).mark(done);
}

/**
 * Saves the current task's stacks (kernel, then user: two words) at R10 + `at`, for a
 * later probe to report with {@link savedStackFields}.
 */
export function saveStacks(b: ProgramBuilder, at: number): void {
  kernelStack(b, R10, at);
  userStack(b, R10, at + 8);
}

/** The two stack fields, each captured by `capture(b, dst, which)`. */
function fields(
  capture: (b: ProgramBuilder, dst: number, which: "kernel" | "user") => void,
): EventField[] {
  // Built here, not with fields.ts's helpers: the header (fields.ts) includes these.
  const word = (path: string, decoding: EventField["decoding"], signed: boolean) => ({
    path: [path],
    decoding,
    size: 8,
    type: { kind: "int", signed, bigint: !signed } as const,
  });
  return [
    {
      ...word("kstack", { type: "int", size: 8, signed: true }, true),
      capture: (b, dst) => capture(b, dst, "kernel"),
      transform: (id) => addresses(Number(id)).map((a) => names!.kernelFrame(a)),
    },
    {
      ...word("ustack", { type: "pointer" }, false),
      capture: (b, dst) => capture(b, dst, "user"),
      retain: (v) => {
        const n = BigInt(v as bigint);
        if (!(n >> 63n)) names?.rememberProcess(Number(n >> 32n));
      },
      transform: (v) => {
        const n = BigInt(v as bigint);
        if (n >> 63n) return [];
        const pid = Number(n >> 32n);
        names!.rememberProcess(pid);
        return addresses(Number(n & 0xffff_ffffn)).map((a) => names!.userFrame(pid, a));
      },
    },
  ];
}

/**
 * `kstack` (the kernel stack's id, negative for none) and `ustack` (the process id in the high
 * half, the user stack's id in the low half, all ones for none): integers in the kernel, frame
 * names in JavaScript.
 */
export function stackFields(): EventField[] {
  return fields((b, dst, which) => (which === "kernel" ? kernelStack : userStack)(b, R7, dst));
}

/**
 * The stacks {@link saveStacks} kept, read from the saved state at R8 + `off` (none when
 * there is no state): the stacks of another moment (a task's, as it left the CPU).
 */
export function savedStackFields(off: number): EventField[] {
  return fields((b, dst, which) => {
    const none = b.fresh("no_saved_stack");
    const done = b.fresh("saved_stack");
    b.emit(jmp("JEQ", R8, imm(0), none), ldx("DW", R0, R8, off + (which === "user" ? 8 : 0)));
    b.emit(stx("DW", R7, dst, R0), ja(done)).mark(none);
    b.emit(st("DW", R7, dst, -1)).mark(done);
  });
}
