/**
 * The parts of an eBPF opcode byte, named as in the kernel's instruction-set document.
 *
 * ```text
 *   7 6 5 4 3 2 1 0
 *  +-------+-+-----+
 *  |  op   |s|class|   ALU / ALU64 / JMP / JMP32   (s: 0 = immediate, 1 = register source)
 *  +-----+-+-+-----+
 *  |mode |size|class|  LD / LDX / ST / STX
 *  +-----+----+-----+
 * ```
 *
 * @module
 */

/** Instruction classes (low three bits). */
export const Class = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  JMP32: 0x06,
  ALU64: 0x07,
} as const;

/** Source operand bit for ALU and JMP classes. */
export const Source = { K: 0x00, X: 0x08 } as const;

/** ALU operations (high four bits). */
export const AluOp = {
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  MOV: 0xb0,
  ARSH: 0xc0,
} as const;
export type AluOp = keyof typeof AluOp;

/** Jump operations (high four bits). */
export const JumpOp = {
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  JNE: 0x50,
  JSGT: 0x60,
  JSGE: 0x70,
  CALL: 0x80,
  EXIT: 0x90,
  JLT: 0xa0,
  JLE: 0xb0,
  JSLT: 0xc0,
  JSLE: 0xd0,
} as const;
export type JumpOp = keyof typeof JumpOp;

/** Access sizes for loads and stores. */
export const Size = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export type Size = keyof typeof Size;

/** Bytes moved by each access size. */
export const SIZE_BYTES: Record<Size, number> = { B: 1, H: 2, W: 4, DW: 8 };

/** Load/store modes (high three bits). */
export const Mode = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, ATOMIC: 0xc0 } as const;

/** `src` register values of a 64-bit immediate load that make the loader substitute an object. */
export const PseudoSrc = { MAP_FD: 1, MAP_VALUE: 2, FUNC: 4 } as const;

/** Atomic operations carried in the immediate of a `Mode.ATOMIC` store. */
export const AtomicOp = { ADD: 0x00, FETCH: 0x01, XCHG: 0xe1, CMPXCHG: 0xf1 } as const;
