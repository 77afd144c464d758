/**
 * eBPF instructions as values, and builders that read like the instruction set:
 * `mov64(R1, R10)`, `alu64("ADD", R1, -8)`, `jmp("JEQ", R0, 0, "drop")`, `ldx("DW", R1, R6, 16)`.
 *
 * Jump targets and map references are names, kept on the instruction and resolved by
 * {@link assemble}; a label names the instruction that follows {@link label}.
 *
 * @module
 */
import { AluOp, AtomicOp, Class, JumpOp, Mode, PseudoSrc, Size, Source } from "./opcode.ts";
import { Helper } from "./helpers.ts";

/** A register number, R0 through R10. */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;
export const R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;

/** One instruction; a 64-bit immediate load is one value here and two slots when encoded. */
export interface Instruction {
  opcode: number;
  dst: Reg;
  src: number;
  off: number;
  imm: number;
  /** Full value of a 64-bit immediate load (`ld_imm64`). */
  imm64?: bigint;
  /** Label that a jump's offset is resolved against. */
  target?: string;
  /** Name of the map whose fd a `ld_imm64` carries. */
  map?: string;
  /** Labels that name this instruction. */
  labels?: string[];
  /** A note printed beside the instruction in listings. */
  comment?: string;
}

/** A label marker in an instruction list; names the next real instruction. */
export interface Label {
  label: string;
}

/** What a program is written as: instructions with label markers between them. */
export type Item = Instruction | Label;

function ins(opcode: number, dst: Reg, src = 0, off = 0, imm = 0): Instruction {
  return { opcode, dst, src, off, imm };
}

function checkImm32(imm: number): number {
  if (!Number.isInteger(imm) || imm < -0x8000_0000 || imm > 0xffff_ffff) {
    throw new RangeError(`Immediate ${imm} does not fit in 32 bits: use ldImm64`);
  }
  return imm | 0;
}

/** A label marker. */
export function label(name: string): Label {
  return { label: name };
}

/** 64-bit ALU operation with a register or immediate source. */
export function alu64(op: AluOp, dst: Reg, src: Reg | { imm: number }): Instruction {
  return alu(Class.ALU64, op, dst, src);
}

/** 32-bit ALU operation (upper half of dst is zeroed). */
export function alu32(op: AluOp, dst: Reg, src: Reg | { imm: number }): Instruction {
  return alu(Class.ALU, op, dst, src);
}

function alu(cls: number, op: AluOp, dst: Reg, src: Reg | { imm: number }): Instruction {
  if (typeof src === "number") return ins(cls | AluOp[op] | Source.X, dst, src);
  return ins(cls | AluOp[op] | Source.K, dst, 0, 0, checkImm32(src.imm));
}

/** Signed 64-bit division or remainder (`s/=`, `s%=`; cpu v4, kernel 6.6+), truncating toward 0. */
export function sdiv64(op: "DIV" | "MOD", dst: Reg, src: Reg | { imm: number }): Instruction {
  return { ...alu(Class.ALU64, op, dst, src), off: 1 };
}

/** `dst = src` (64-bit) from a register or a 32-bit sign-extended immediate. */
export function mov64(dst: Reg, src: Reg | { imm: number }): Instruction {
  return alu64("MOV", dst, src);
}

/** Shorthand for an immediate operand. */
export function imm(value: number): { imm: number } {
  return { imm: value };
}

/** Conditional or unconditional jump to a label (64-bit compare). */
export function jmp(op: JumpOp, dst: Reg, src: Reg | { imm: number }, target: string): Instruction {
  return jump(Class.JMP, op, dst, src, target);
}

/** Conditional jump comparing the low 32 bits. */
export function jmp32(
  op: JumpOp,
  dst: Reg,
  src: Reg | { imm: number },
  target: string,
): Instruction {
  return jump(Class.JMP32, op, dst, src, target);
}

function jump(
  cls: number,
  op: JumpOp,
  dst: Reg,
  src: Reg | { imm: number },
  target: string,
): Instruction {
  const i = typeof src === "number"
    ? ins(cls | JumpOp[op] | Source.X, dst, src)
    : ins(cls | JumpOp[op] | Source.K, dst, 0, 0, checkImm32(src.imm));
  i.target = target;
  return i;
}

/** Unconditional jump. */
export function ja(target: string): Instruction {
  return { ...ins(Class.JMP | JumpOp.JA, R0), target };
}

/** Call a kernel helper; arguments in R1-R5, result in R0, R1-R5 clobbered. */
export function call(helper: Helper): Instruction {
  return ins(Class.JMP | JumpOp.CALL, R0, 0, 0, Helper[helper]);
}

/** Return R0 to the kernel. */
export function exit(): Instruction {
  return ins(Class.JMP | JumpOp.EXIT, R0);
}

/** `dst = *(size *)(src + off)` */
export function ldx(size: Size, dst: Reg, src: Reg, off: number): Instruction {
  return ins(Class.LDX | Mode.MEM | Size[size], dst, src, off);
}

/** `*(size *)(dst + off) = src` */
export function stx(size: Size, dst: Reg, off: number, src: Reg): Instruction {
  return ins(Class.STX | Mode.MEM | Size[size], dst, src, off);
}

/** `*(size *)(dst + off) = imm` */
export function st(size: Size, dst: Reg, off: number, value: number): Instruction {
  return ins(Class.ST | Mode.MEM | Size[size], dst, 0, off, checkImm32(value));
}

/** `lock *(size *)(dst + off) += src` (W or DW). */
export function atomicAdd(size: "W" | "DW", dst: Reg, off: number, src: Reg): Instruction {
  return ins(Class.STX | Mode.ATOMIC | Size[size], dst, src, off, AtomicOp.ADD);
}

/**
 * `r0 = cmpxchg(*(size *)(dst + off), r0, src)`: stores `src` where the memory holds R0, and
 * leaves in R0 what it held (kernel 5.12+).
 */
export function atomicCmpxchg(size: "W" | "DW", dst: Reg, off: number, src: Reg): Instruction {
  return ins(Class.STX | Mode.ATOMIC | Size[size], dst, src, off, AtomicOp.CMPXCHG);
}

/** `dst = value` for any 64-bit value (two instruction slots). */
export function ldImm64(dst: Reg, value: bigint): Instruction {
  const v = BigInt.asUintN(64, value);
  return {
    ...ins(Class.LD | Mode.IMM | Size.DW, dst, 0, 0, Number(v & 0xffff_ffffn) | 0),
    imm64: v,
  };
}

/** `dst = map` : the loader substitutes the named map's fd. */
export function ldMap(dst: Reg, map: string): Instruction {
  return { ...ins(Class.LD | Mode.IMM | Size.DW, dst, PseudoSrc.MAP_FD), imm64: 0n, map };
}

/**
 * `dst = &function`: the address of the subprogram at `target`, for helpers that take a
 * callback (`loop`). The kernel wants BTF for such a program: see `Program.load`.
 */
export function ldFunc(dst: Reg, target: string): Instruction {
  return {
    ...ins(Class.LD | Mode.IMM | Size.DW, dst, PseudoSrc.FUNC),
    imm64: 0n,
    target,
  };
}

/** True for a `ldFunc`: a 64-bit load of a subprogram's address. */
export function isFuncLoad(i: Instruction): boolean {
  return isWide(i) && i.src === PseudoSrc.FUNC;
}

/** True for the two-slot 64-bit immediate load. */
export function isWide(i: Instruction): boolean {
  return i.opcode === (Class.LD | Mode.IMM | Size.DW);
}

/** True for a label marker. */
export function isLabel(item: Item): item is Label {
  return "label" in item;
}
