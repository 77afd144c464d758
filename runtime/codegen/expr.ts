/**
 * Generates BPF for kernel lambdas: an {@link Expr} evaluated on the record R7 points at.
 * Every field an expression reads is captured before it runs, so evaluation calls no helper
 * and may use R0-R5 freely.
 *
 * Values live in R0-R4 by nesting depth; deeper expressions spill to the stack, with R5 as
 * the one scratch register an operator may use briefly.
 *
 * @module
 */
import {
  alu64,
  imm,
  ja,
  jmp,
  type JumpOp,
  ldImm64,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R4,
  R5,
  R7,
  type Reg,
  sdiv64,
  type Size,
  stx,
} from "../../bpf/asm/mod.ts";
import { haveSignedDivision } from "../../bpf/features.ts";
import type { ComparisonOp, Expr, ValueType } from "../lambda/ir.ts";
import type { ProgramBuilder } from "./builder.ts";
import type { PlacedField } from "./fields.ts";

/** Finds where the record holds a field path the expression reads. */
export type Locate = (path: readonly string[]) => PlacedField;

const VALUE_REGS: readonly Reg[] = [R0, R1, R2, R3, R4];
const SWAP = R5;
const SIZE: Record<number, Size> = { 1: "B", 2: "H", 4: "W", 8: "DW" };

function fitsImm32(v: bigint): boolean {
  return v >= -0x8000_0000n && v <= 0x7fff_ffffn;
}

/** Comparisons are unsigned only on u64 bigints (pointers), where JavaScript sees no sign. */
function unsigned(t: ValueType): boolean {
  return t.kind === "int" && t.bigint && !t.signed;
}

const JUMP: Record<ComparisonOp, [JumpOp, JumpOp]> = {
  "==": ["JEQ", "JEQ"],
  "!=": ["JNE", "JNE"],
  "<": ["JSLT", "JLT"],
  "<=": ["JSLE", "JLE"],
  ">": ["JSGT", "JGT"],
  ">=": ["JSGE", "JGE"],
};
const NEGATED: Record<ComparisonOp, ComparisonOp> = {
  "==": "!=",
  "!=": "==",
  "<": ">=",
  "<=": ">",
  ">": "<=",
  ">=": "<",
};

/** Compiles expressions of one program. */
export class ExprCompiler {
  readonly #b: ProgramBuilder;
  readonly #locate: Locate;
  readonly #spillSlots: number[] = [];
  #sdiv: boolean | undefined;
  #spillDepth = 0;

  /**
   * `sdiv`: emit the signed division instruction (kernel 6.6+); by default, when this kernel
   * takes it (asked at the first signed division). Without it, signed division is built from unsigned division.
   */
  constructor(b: ProgramBuilder, locate: Locate, options: { sdiv?: boolean } = {}) {
    this.#b = b;
    this.#locate = locate;
    this.#sdiv = options.sdiv;
  }

  /** Emits code leaving the value of `e` in R0. */
  value(e: Expr): void {
    this.#value(e, 0);
  }

  /** Emits code that jumps to `otherwise` when `e` is false (zero) and falls through if not. */
  test(e: Expr, otherwise: string): void {
    const b = this.#b;
    switch (e.op) {
      case "and":
        this.test(e.left, otherwise);
        this.test(e.right, otherwise);
        return;
      case "compare": {
        const src = this.#operands(e.left, e.right, 0);
        const op = NEGATED[e.operator];
        const u = unsigned(e.left.type) || unsigned(e.right.type);
        b.emit(jmp(JUMP[op][u ? 1 : 0], R0, src, otherwise));
        return;
      }
      case "const":
        if (e.value === 0n) b.emit(ja(otherwise));
        return;
      case "strcmp":
        this.#strcmp(e, R0, otherwise);
        return;
      default:
        this.#value(e, 0);
        b.emit(jmp("JEQ", R0, imm(0), otherwise));
    }
  }

  #value(e: Expr, d: number): void {
    const b = this.#b;
    const rd = VALUE_REGS[d];
    switch (e.op) {
      case "field":
        return this.#load(e.path, rd);
      case "const":
        b.emit(fitsImm32(e.value) ? mov64(rd, imm(Number(e.value))) : ldImm64(rd, e.value));
        return;
      case "neg":
        this.#value(e.arg, d);
        b.emit(alu64("NEG", rd, imm(0)));
        return;
      case "bitnot":
        this.#value(e.arg, d);
        b.emit(alu64("XOR", rd, imm(-1)));
        return;
      case "abs": {
        const done = b.fresh("abs");
        this.#value(e.arg, d);
        b.emit(jmp("JSGE", rd, imm(0), done), alu64("NEG", rd, imm(0))).mark(done);
        return;
      }
      case "arith":
        return this.#arith(e, d);
      case "min":
      case "max": {
        this.#value(e.args[0], d);
        const u = unsigned(e.type);
        const keep: JumpOp = e.op === "min" ? (u ? "JLE" : "JSLE") : (u ? "JGE" : "JSGE");
        for (const arg of e.args.slice(1)) {
          const src = this.#operand(arg, d);
          const skip = b.fresh("keep");
          b.emit(jmp(keep, rd, src, skip), mov64(rd, src)).mark(skip);
        }
        return;
      }
      case "cond": {
        const otherwise = b.fresh("else");
        const done = b.fresh("fi");
        this.#value(e.test, d);
        b.emit(jmp("JEQ", rd, imm(0), otherwise));
        this.#value(e.then, d);
        b.emit(ja(done)).mark(otherwise);
        this.#value(e.else, d);
        b.mark(done);
        return;
      }
      case "compare": {
        const src = this.#operands(e.left, e.right, d);
        const u = unsigned(e.left.type) || unsigned(e.right.type);
        this.#bool(rd, (yes) => b.emit(jmp(JUMP[e.operator][u ? 1 : 0], rd, src, yes)));
        return;
      }
      case "not":
        this.#value(e.arg, d);
        this.#bool(rd, (yes) => b.emit(jmp("JEQ", rd, imm(0), yes)));
        return;
      case "and":
      case "or": {
        // Short-circuit: `and` stops at the first zero, `or` at the first non-zero.
        const decided = b.fresh(e.op);
        const done = b.fresh("logic_done");
        const stop: JumpOp = e.op === "and" ? "JEQ" : "JNE";
        this.#value(e.left, d);
        b.emit(jmp(stop, rd, imm(0), decided));
        this.#value(e.right, d);
        b.emit(jmp(stop, rd, imm(0), decided));
        b.emit(mov64(rd, imm(e.op === "and" ? 1 : 0)), ja(done)).mark(decided);
        b.emit(mov64(rd, imm(e.op === "and" ? 0 : 1))).mark(done);
        return;
      }
      case "strcmp": {
        const no = b.fresh("str_ne");
        const done = b.fresh("str_done");
        this.#strcmp(e, rd, no);
        b.emit(mov64(rd, imm(1)), ja(done)).mark(no);
        b.emit(mov64(rd, imm(0))).mark(done);
        return;
      }
    }
  }

  /** `rd = 1` when `jump(yes)` jumps, else 0. */
  #bool(rd: Reg, jump: (yes: string) => void): void {
    const yes = this.#b.fresh("true");
    const done = this.#b.fresh("bool");
    jump(yes);
    this.#b.emit(mov64(rd, imm(0)), ja(done)).mark(yes);
    this.#b.emit(mov64(rd, imm(1))).mark(done);
  }

  #load(path: readonly string[], rd: Reg): void {
    const { offset, field: { decoding } } = this.#locate(path);
    const [size, signed] = decoding.type === "int"
      ? [decoding.size, decoding.signed]
      : [8, decoding.type === "latency"];
    this.#b.emit(ldx(SIZE[size], rd, R7, offset));
    if (signed && size < 8) {
      const shift = 64 - 8 * size;
      this.#b.emit(alu64("LSH", rd, imm(shift)), alu64("ARSH", rd, imm(shift)));
    }
  }

  /**
   * Evaluates `left` into the depth-`d` register and returns the right operand: an immediate
   * when it is a small constant, else a register holding it.
   */
  #operands(left: Expr, right: Expr, d: number): Reg | { imm: number } {
    this.#value(left, d);
    return this.#operand(right, d);
  }

  /** The right operand of an operator whose left value is in the depth-`d` register. */
  #operand(right: Expr, d: number): Reg | { imm: number } {
    if (right.op === "const" && fitsImm32(right.value)) return imm(Number(right.value));
    if (d + 1 < VALUE_REGS.length) {
      this.#value(right, d + 1);
      return VALUE_REGS[d + 1];
    }
    // Out of registers: park the left value on the stack while the right one is computed.
    const rd = VALUE_REGS[d];
    const slot = this.#spillSlot();
    this.#spillDepth++;
    this.#b.emit(stx("DW", R10, slot, rd));
    this.#value(right, d);
    this.#b.emit(mov64(SWAP, rd), ldx("DW", rd, R10, slot));
    this.#spillDepth--;
    return SWAP;
  }

  #useSdiv(): boolean {
    return this.#sdiv ??= haveSignedDivision();
  }

  #spillSlot(): number {
    this.#spillSlots[this.#spillDepth] ??= this.#b.alloc(8);
    return this.#spillSlots[this.#spillDepth];
  }

  #arith(e: Expr & { op: "arith" }, d: number): void {
    const b = this.#b;
    const rd = VALUE_REGS[d];
    const src = this.#operands(e.left, e.right, d);
    const signed = !unsigned(e.type);
    switch (e.operator) {
      case "+":
        b.emit(alu64("ADD", rd, src));
        return;
      case "-":
        b.emit(alu64("SUB", rd, src));
        return;
      case "*":
        b.emit(alu64("MUL", rd, src));
        return;
      case "/":
      case "%": {
        const op = e.operator === "/" ? "DIV" : "MOD";
        // The verifier refuses a constant zero divisor; BPF's answer for it is 0 or the dividend.
        if (typeof src !== "number" && src.imm === 0) {
          if (op === "DIV") b.emit(mov64(rd, imm(0)));
          return;
        }
        if (!signed) b.emit(alu64(op, rd, src));
        else if (this.#useSdiv()) b.emit(sdiv64(op, rd, src));
        else this.#signedDivision(op, rd, src);
        return;
      }
      case "&":
        b.emit(alu64("AND", rd, src));
        return;
      case "|":
        b.emit(alu64("OR", rd, src));
        return;
      case "^":
        b.emit(alu64("XOR", rd, src));
        return;
      case "<<":
      case ">>":
      case ">>>": {
        const op = e.operator === "<<" ? "LSH" : e.operator === ">>" && signed ? "ARSH" : "RSH";
        // BPF masks register shift counts to 6 bits; immediates must be masked by hand.
        b.emit(alu64(op, rd, typeof src === "number" ? src : imm(src.imm & 63)));
        return;
      }
    }
  }

  /**
   * Signed division or remainder from unsigned ones, for kernels before 6.6 (no `s/=`): divides
   * the magnitudes, then gives the quotient the sign of `a * b` and the remainder the sign of
   * `a`, truncating toward zero like `s/=`. |-2^63| is 2^63 as an unsigned value, so every
   * dividend works; a zero divisor gives 0 and a remainder of `a`, as `s/=` and `s%=` do. Only
   * branches keep the signs, so no register beyond the operands is needed (the divisor's
   * register holds a temporary that is dead after the operator).
   */
  #signedDivision(op: "DIV" | "MOD", rd: Reg, src: Reg | { imm: number }): void {
    const b = this.#b;
    const negA = b.fresh("sdiv_neg_a");
    const done = b.fresh("sdiv_done");
    const neg = (r: Reg) => alu64("NEG", r, imm(0));
    if (typeof src !== "number" && src.imm !== -0x8000_0000) {
      // A constant divisor's sign is known: one branch, on the dividend's.
      const divide = alu64(op, rd, imm(Math.abs(src.imm)));
      const negative = op === "DIV" && src.imm < 0;
      b.emit(jmp("JSLT", rd, imm(0), negA), divide);
      if (negative) b.emit(neg(rd));
      b.emit(ja(done)).mark(negA).emit(neg(rd), divide);
      if (!negative) b.emit(neg(rd));
      b.mark(done);
      return;
    }
    const d = typeof src === "number" ? src : SWAP;
    if (typeof src !== "number") b.emit(mov64(SWAP, src));
    const negB = b.fresh("sdiv_neg_b");
    const negBoth = b.fresh("sdiv_neg_ab");
    const divide = alu64(op, rd, d);
    b.emit(jmp("JSLT", rd, imm(0), negA), jmp("JSLT", d, imm(0), negB));
    // a >= 0, b >= 0
    b.emit(divide, ja(done));
    // a >= 0, b < 0: the quotient is negative, the remainder not.
    b.mark(negB).emit(neg(d), divide);
    if (op === "DIV") b.emit(neg(rd));
    b.emit(ja(done));
    // a < 0: the remainder is negative; the quotient too unless b < 0.
    b.mark(negA).emit(neg(rd), jmp("JSLT", d, imm(0), negBoth), divide, neg(rd), ja(done));
    b.mark(negBoth).emit(neg(d), divide);
    if (op === "MOD") b.emit(neg(rd));
    b.mark(done);
  }

  /**
   * Jumps to `no` unless the string field matches: its first bytes equal `value` and, for
   * `eq`, a NUL follows. Compares 8 bytes at a time, masking the last partial word.
   */
  #strcmp(e: Expr & { op: "strcmp" }, rd: Reg, no: string): void {
    const b = this.#b;
    const bytes = new TextEncoder().encode(e.value);
    const want = e.mode === "eq" ? [...bytes, 0] : [...bytes];
    const slot = this.#locate(e.field.path);
    const d = slot.field.decoding;
    const size = d.type === "string" ? d.size : 0;
    if (want.length > size) {
      b.emit(ja(no));
      return;
    }
    for (let p = 0; p < want.length; p += 8) {
      const n = Math.min(8, want.length - p);
      let word = 0n;
      for (let i = n - 1; i >= 0; i--) word = (word << 8n) | BigInt(want[p + i]);
      b.emit(ldx("DW", rd, R7, slot.offset + p));
      if (n < 8) b.emit(alu64("LSH", rd, imm(64 - 8 * n)), alu64("RSH", rd, imm(64 - 8 * n)));
      b.emit(
        fitsImm32(word) ? mov64(SWAP, imm(Number(word))) : ldImm64(SWAP, word),
        jmp("JNE", rd, SWAP, no),
      );
    }
  }
}
