/**
 * Signed division and remainder in generated code (runtime/codegen/expr.ts), both ways it can
 * be emitted: built from unsigned division (every kernel) and as the `s/=` instruction (kernels
 * that take it, 6.6+). A raw_tracepoint program computes `a / b`, `a % b` and divisions by
 * constants of two fields, run once per pair of edge values with BPF_PROG_TEST_RUN; the results
 * must equal BigInt's truncating division, 64-bit wrapped, with BPF's answers for a zero
 * divisor (quotient 0, remainder the dividend).
 *
 * Needs root and libbpf; x86_64.
 */
import { deepStrictEqual as equal } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { ProgramBuilder } from "../../runtime/codegen/builder.ts";
import { ExprCompiler } from "../../runtime/codegen/expr.ts";
import { field as eventField } from "../../runtime/codegen/fields.ts";
import type { Expr, ValueType } from "../../runtime/lambda/ir.ts";
import { testRun } from "../fixtures/bpf.ts";
import { kernelTest } from "../fixtures/kernel.ts";

const { R0, R1, R6, R7, R10 } = a;
const I64 = 2n ** 63n;
const INT: ValueType = { kind: "int", signed: true, bigint: false };
const field = (name: string): Expr => ({ op: "field", path: [name], type: INT });
const constant = (value: bigint): Expr => ({ op: "const", value, type: INT });
const divide = (operator: "/" | "%", left: Expr, right: Expr): Expr => ({
  op: "arith",
  operator,
  left,
  right,
  type: INT,
});

const DIVIDENDS = [0n, 1n, -1n, 7n, -7n, 100n, -100n, I64 - 1n, -I64, -I64 + 1n, 12345678901234n];
const DIVISORS = [1n, -1n, 2n, -2n, 3n, -3n, 0n, 7n, -7n, I64 - 1n, -I64, 2n ** 31n, -(2n ** 31n)];
/** Constant divisors: immediates, both signs, and -2^31, whose magnitude is no immediate. */
const CONSTANTS = [1n, -1n, 2n, -2n, 7n, -7n, 2n ** 31n - 1n, -(2n ** 31n), 10n ** 12n];

/** What `s/=` and `s%=` give: truncation toward zero, 64-bit wrap, BPF's zero-divisor rule. */
function expected(operator: "/" | "%", x: bigint, y: bigint): bigint {
  if (y === 0n) return operator === "/" ? 0n : x;
  return BigInt.asIntN(64, operator === "/" ? x / y : x % y);
}

const EXPRS: Array<{ expr: Expr; eval: (x: bigint, y: bigint) => bigint; text: string }> = [
  ...(["/", "%"] as const).map((op) => ({
    expr: divide(op, field("a"), field("b")),
    eval: (x: bigint, y: bigint) => expected(op, x, y),
    text: `a ${op} b`,
  })),
  ...CONSTANTS.flatMap((c) =>
    (["/", "%"] as const).map((op) => ({
      expr: divide(op, field("a"), constant(c)),
      eval: (x: bigint) => expected(op, x, c),
      text: `a ${op} ${c}`,
    }))
  ),
];

/** A program that stores every expression's value of the record {a: ctx[0], b: ctx[1]}. */
function divisionProgram(sdiv: boolean, out: BpfMap): Program {
  const b = new ProgramBuilder();
  const record = b.alloc(16);
  const results = b.alloc(8 * EXPRS.length);
  const key = b.alloc(8);
  b.emit(a.mov64(R6, R1));
  for (const i of [0, 1]) b.emit(a.ldx("DW", R0, R6, 8 * i), a.stx("DW", R10, record + 8 * i, R0));
  b.stackPtr(R7, record);
  const s64 = { type: "int", size: 8, signed: true } as const;
  const exprs = new ExprCompiler(
    b,
    (path) => ({
      offset: path[0] === "a" ? 0 : 8,
      field: eventField(path as string[], s64, () => {}),
    }),
    { sdiv },
  );
  EXPRS.forEach(({ expr }, i) => {
    exprs.value(expr);
    b.emit(a.stx("DW", R10, results + 8 * i, R0));
  });
  b.zero(key, 8).update("out", key, results).ret();
  return Program.load({
    name: `div_${sdiv ? "sdiv" : "udiv"}`,
    type: "raw_tracepoint",
    probe: "test:signed_division",
    maps: new Map([["out", out]]),
    instructions: b.items,
  });
}

function check(sdiv: boolean): void {
  using out = BpfMap.create({
    name: `div_out_${Deno.pid.toString(36)}`,
    type: "array",
    keySize: 4,
    valueSize: 8 * EXPRS.length,
    maxEntries: 1,
  });
  using prog = divisionProgram(sdiv, out);
  const mismatches: string[] = [];
  for (const x of DIVIDENDS) {
    for (const y of DIVISORS) {
      equal(testRun(prog, [x, y]), 0);
      const got = new BigInt64Array(out.lookup(new Uint8Array(4))!.slice().buffer);
      EXPRS.forEach((e, i) => {
        const want = e.eval(x, y);
        if (got[i] !== want) {
          mismatches.push(`${e.text} with a=${x} b=${y}: ${got[i]}, not ${want}`);
        }
      });
    }
  }
  equal(mismatches, []);
}

Deno.test("signed / and % built from unsigned division agree with BigInt on edge values", () => {
  check(false);
});

kernelTest(
  ["sdiv"],
  "signed / and % as the s/= instruction agree with BigInt on edge values",
  () => {
    check(true);
  },
);
