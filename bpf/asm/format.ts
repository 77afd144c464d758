/**
 * Prints instructions in the kernel verifier's own syntax (`r1 = *(u64 *)(r6 +16)`), so a
 * listing and a verifier log read alike and their slot numbers line up.
 *
 * @module
 */
import { AluOp, AtomicOp, Class, JumpOp, Mode, Size, SIZE_BYTES, Source } from "./opcode.ts";
import { HELPER_NAMES } from "./helpers.ts";
import { type Instruction, isFuncLoad } from "./instruction.ts";
import type { Linked } from "./assemble.ts";

const ALU_SYMBOL: Record<number, string> = {
  [AluOp.ADD]: "+=",
  [AluOp.SUB]: "-=",
  [AluOp.MUL]: "*=",
  [AluOp.DIV]: "/=",
  [AluOp.OR]: "|=",
  [AluOp.AND]: "&=",
  [AluOp.LSH]: "<<=",
  [AluOp.RSH]: ">>=",
  [AluOp.MOD]: "%=",
  [AluOp.XOR]: "^=",
  [AluOp.MOV]: "=",
  [AluOp.ARSH]: "s>>=",
};

const JMP_SYMBOL: Record<number, string> = {
  [JumpOp.JEQ]: "==",
  [JumpOp.JGT]: ">",
  [JumpOp.JGE]: ">=",
  [JumpOp.JSET]: "&",
  [JumpOp.JNE]: "!=",
  [JumpOp.JSGT]: "s>",
  [JumpOp.JSGE]: "s>=",
  [JumpOp.JLT]: "<",
  [JumpOp.JLE]: "<=",
  [JumpOp.JSLT]: "s<",
  [JumpOp.JSLE]: "s<=",
};

function sizeName(opcode: number): string {
  const size = (Object.keys(Size) as Size[]).find((s) => Size[s] === (opcode & 0x18))!;
  return `u${SIZE_BYTES[size] * 8}`;
}

function signed(off: number): string {
  return off >= 0 ? `+${off}` : `${off}`;
}

/** One instruction as the verifier prints it; `target` is the resolved jump slot, if any. */
export function formatInstruction(i: Instruction, target?: string): string {
  const cls = i.opcode & 0x07;
  const dst = `r${i.dst}`;
  switch (cls) {
    case Class.ALU64:
    case Class.ALU: {
      const w = cls === Class.ALU ? "w" : "r";
      const op = i.opcode & 0xf0;
      if (op === AluOp.NEG) return `${w}${i.dst} = -${w}${i.dst}`;
      const src = (i.opcode & Source.X) ? `${w}${i.src}` : `${i.imm}`;
      // off 1 on DIV/MOD: the signed forms.
      const sign = i.off === 1 && (op === AluOp.DIV || op === AluOp.MOD) ? "s" : "";
      return `${w}${i.dst} ${sign}${ALU_SYMBOL[op]} ${src}`;
    }
    case Class.JMP:
    case Class.JMP32: {
      const op = i.opcode & 0xf0;
      if (op === JumpOp.EXIT) return "exit";
      if (op === JumpOp.CALL) return `call ${HELPER_NAMES.get(i.imm) ?? "#" + i.imm}#${i.imm}`;
      const to = `goto ${target ?? i.target ?? signed(i.off)}`;
      if (op === JumpOp.JA) return to;
      const w = cls === Class.JMP32 ? "w" : "r";
      const src = (i.opcode & Source.X) ? `${w}${i.src}` : `${i.imm}`;
      return `if ${w}${i.dst} ${JMP_SYMBOL[op]} ${src} ${to}`;
    }
    case Class.LDX:
      return `${dst} = *(${sizeName(i.opcode)} *)(r${i.src} ${signed(i.off)})`;
    case Class.STX:
      if ((i.opcode & 0xe0) === Mode.ATOMIC) {
        const at = `*(${sizeName(i.opcode)} *)(${dst} ${signed(i.off)})`;
        if (i.imm === AtomicOp.CMPXCHG) return `r0 = cmpxchg(${at}, r0, r${i.src})`;
        return `lock ${at} += r${i.src}`;
      }
      return `*(${sizeName(i.opcode)} *)(${dst} ${signed(i.off)}) = r${i.src}`;
    case Class.ST:
      return `*(${sizeName(i.opcode)} *)(${dst} ${signed(i.off)}) = ${i.imm}`;
    case Class.LD:
      if (i.map !== undefined) return `${dst} = map[${i.map}] ll`;
      if (isFuncLoad(i)) return `${dst} = ${target ?? i.target} ll`;
      return `${dst} = 0x${(i.imm64 ?? 0n).toString(16)} ll`;
  }
  return `.byte 0x${i.opcode.toString(16)}`;
}

/**
 * A whole program, one instruction a line, numbered by slot, with labels on lines of their own.
 * `mark` flags one slot (the instruction a verifier rejected) with `>`.
 */
export function formatProgram(linked: Linked, mark?: number): string {
  const { instructions, slots } = linked;
  const at = new Map<string, number>();
  instructions.forEach((i, n) => i.labels?.forEach((l) => at.set(l, slots[n])));
  const lines: string[] = [];
  instructions.forEach((i, n) => {
    for (const l of i.labels ?? []) lines.push(`${l}:`);
    const target = i.target !== undefined ? `${at.get(i.target) ?? "?"} <${i.target}>` : undefined;
    const pointer = slots[n] === mark ? ">" : " ";
    const text = formatInstruction(i, target);
    const note = i.comment ? `  ; ${i.comment}` : "";
    lines.push(`${pointer}${String(slots[n]).padStart(4)}: ${text}${note}`);
  });
  return lines.join("\n");
}
