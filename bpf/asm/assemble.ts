/**
 * Resolves labels and map references and encodes instructions into the kernel's
 * 8-byte `struct bpf_insn` format.
 *
 * @module
 */
import { Class, JumpOp } from "./opcode.ts";
import { type Instruction, isFuncLoad, isLabel, isWide, type Item } from "./instruction.ts";

/** A program whose labels are attached and whose slot offsets are known. */
export interface Linked {
  instructions: Instruction[];
  /** Slot index of each instruction (wide loads take two slots). */
  slots: number[];
}

/** The first slot of each subprogram (the targets of `ldFunc`), in order. */
export function subprogramSlots(linked: Linked): number[] {
  const { instructions, slots } = linked;
  const targets = new Set(instructions.filter(isFuncLoad).map((i) => i.target!));
  const starts: number[] = [];
  instructions.forEach((i, n) => {
    if (i.labels?.some((l) => targets.has(l))) starts.push(slots[n]);
  });
  return starts;
}

/** Raised for a jump to a label that no instruction carries, or a label used twice. */
export class AssemblyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssemblyError";
  }
}

/** Attaches label markers to the instructions they name and computes slot offsets. */
export function link(items: readonly Item[]): Linked {
  const instructions: Instruction[] = [];
  const slots: number[] = [];
  const seen = new Set<string>();
  let pending: string[] = [];
  let slot = 0;
  for (const item of items) {
    if (isLabel(item)) {
      if (seen.has(item.label)) throw new AssemblyError(`Label '${item.label}' is defined twice`);
      seen.add(item.label);
      pending.push(item.label);
      continue;
    }
    const copy = pending.length ? { ...item, labels: [...(item.labels ?? []), ...pending] } : item;
    pending = [];
    instructions.push(copy);
    slots.push(slot);
    slot += isWide(item) ? 2 : 1;
  }
  if (pending.length) {
    throw new AssemblyError(`Label '${pending[0]}' is at the end and names no instruction`);
  }
  const live = reachable(instructions);
  if (live.length === instructions.length) return { instructions, slots };
  const kept: number[] = [];
  let at = 0;
  for (const i of live) {
    kept.push(at);
    at += isWide(i) ? 2 : 1;
  }
  return { instructions: live, slots: kept };
}

/**
 * The instructions control can reach from the first. The kernel's verifier refuses a program
 * with unreachable instructions; generated code may leave some (a branch no path takes).
 */
function reachable(instructions: readonly Instruction[]): Instruction[] {
  const byLabel = new Map<string, number>();
  instructions.forEach((i, n) => i.labels?.forEach((l) => byLabel.set(l, n)));
  const seen = new Array<boolean>(instructions.length).fill(false);
  const todo = [0];
  while (todo.length) {
    const n = todo.pop()!;
    if (n >= instructions.length || seen[n]) continue;
    seen[n] = true;
    const i = instructions[n];
    const cls = i.opcode & 0x07;
    const op = i.opcode & 0xf0;
    const jumps = cls === Class.JMP || cls === Class.JMP32 || isFuncLoad(i);
    if (jumps && i.target !== undefined) {
      const to = byLabel.get(i.target);
      if (to !== undefined) todo.push(to);
    }
    const ends = cls === Class.JMP && (op === JumpOp.JA || op === JumpOp.EXIT);
    if (!ends) todo.push(n + 1);
  }
  return instructions.filter((_, n) => seen[n]);
}

/**
 * Encodes a linked program. `mapFd` gives the fd for each map name a `ldMap` refers to.
 */
export function encode(
  linked: Linked,
  mapFd: (name: string) => number,
): Uint8Array<ArrayBuffer> {
  const { instructions, slots } = linked;
  const at = new Map<string, number>();
  instructions.forEach((i, n) => i.labels?.forEach((l) => at.set(l, slots[n])));
  const total = slots.length ? slots[slots.length - 1] + (isWide(instructions.at(-1)!) ? 2 : 1) : 0;
  const out = new Uint8Array(total * 8);
  const view = new DataView(out.buffer);
  instructions.forEach((i, n) => {
    let off = i.off;
    let distance: number | undefined;
    if (i.target !== undefined) {
      const dest = at.get(i.target);
      if (dest === undefined) throw new AssemblyError(`Jump to undefined label '${i.target}'`);
      distance = dest - slots[n] - 1;
      if (!isFuncLoad(i)) off = distance;
      if (off < -0x8000 || off > 0x7fff) {
        throw new AssemblyError(`Jump to '${i.target}' is out of range (${off})`);
      }
    }
    let imm = i.imm;
    let hi = 0;
    if (i.map !== undefined) imm = mapFd(i.map);
    // A subprogram's address is its distance, carried in the immediate.
    else if (isFuncLoad(i)) imm = distance!;
    else if (i.imm64 !== undefined) {
      imm = Number(i.imm64 & 0xffff_ffffn) | 0;
      hi = Number(i.imm64 >> 32n) | 0;
    }
    const p = slots[n] * 8;
    view.setUint8(p, i.opcode);
    view.setUint8(p + 1, (i.src << 4) | i.dst);
    view.setInt16(p + 2, off, true);
    view.setInt32(p + 4, imm, true);
    if (isWide(i)) view.setInt32(p + 12, hi, true);
  });
  return out;
}
