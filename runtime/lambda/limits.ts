/**
 * How big a kernel lambda may be, checked when it is compiled, before anything loads. Three
 * things run out, each measured on Linux 6.18 and kept well inside:
 *
 * - nesting: each operand kept waiting while the one to its right is computed takes a register,
 *   and past the five value registers 8 bytes of the 512-byte BPF stack. `e.pid + (e.pid +
 *   (...))` 64 deep loaded, 70 deep ran out of stack (less is left when strings are captured);
 *   the limit is 32.
 * - length: a BPF jump reaches 32767 instructions, and a predicate that fails jumps past the
 *   rest of its program. 300 comparisons of a string field with 200-character constants made
 *   about 34000 and failed; the limit is an estimate of 8192, a quarter of the reach, leaving
 *   room for the program around it and for other lambdas of the same probe.
 * - syntax depth: compiling walks the tree recursively; an `a || b || ...` chain of 3000 terms
 *   overflowed the JavaScript stack, 2000 did not; the limit is 1000 levels. The parser gives
 *   out first on nested brackets (acorn: "Not enough stack space" at about 600): the same error.
 *
 * @module
 */
import type * as acorn from "npm:acorn@8.19.0";
import { type Expr, LambdaError } from "./ir.ts";

/** Most operands an expression may keep waiting at once. */
export const MAX_NESTING = 32;
/** Most BPF instructions a kernel lambda may take, as {@link measure} estimates them. */
export const MAX_INSTRUCTIONS = 8192;
/** Most levels of a lambda's syntax tree. */
export const MAX_SYNTAX_DEPTH = 1000;

/** A lambda's source shortened for a message about its size. */
function snippet(source: string): string {
  const line = source.replace(/\s+/g, " ");
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

/** The error for a lambda whose syntax nests deeper than {@link MAX_SYNTAX_DEPTH}. */
export function tooDeepSyntax(source: string): LambdaError {
  return new LambdaError(
    `its syntax nests too deep: a kernel lambda has at most ${MAX_SYNTAX_DEPTH} ` +
      `levels (each term of an a || b || ... chain is one)`,
    snippet(source),
  );
}

/** Throws a {@link LambdaError} when `node`'s tree is deeper than {@link MAX_SYNTAX_DEPTH}. */
export function checkSyntaxDepth(node: acorn.Node, source: string): void {
  // Iterative: the tree may be too deep to walk recursively, which is what this guards.
  const stack: Array<[unknown, number]> = [[node, 1]];
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (depth > MAX_SYNTAX_DEPTH) throw tooDeepSyntax(source);
    for (const child of Object.values(value as Record<string, unknown>)) {
      if (Array.isArray(child)) {
        for (const c of child) if (isNode(c)) stack.push([c, depth + 1]);
      } else if (isNode(child)) stack.push([child, depth + 1]);
    }
  }
}

function isNode(x: unknown): x is acorn.Node {
  return typeof x === "object" && x !== null && typeof (x as acorn.Node).type === "string";
}

/** How many operands `exprs` keep waiting at most, and an upper estimate of their BPF length. */
export function measure(exprs: readonly Expr[]): { nesting: number; instructions: number } {
  let nesting = 0, instructions = 0;
  // [expression, operands waiting while it is computed]; iterative, as above.
  const stack: Array<[Expr, number]> = exprs.map((e) => [e, 0]);
  const operand = (e: Expr, n: number) => {
    // A small constant on the right is an immediate: nothing waits for it.
    if (e.op === "const" && e.value >= -0x8000_0000n && e.value <= 0x7fff_ffffn) return;
    instructions += 3; // a spill and its reload, when registers run out
    stack.push([e, n + 1]);
  };
  while (stack.length) {
    const [e, n] = stack.pop()!;
    nesting = Math.max(nesting, n);
    switch (e.op) {
      case "field":
        instructions += 3; // load, sign-extend by two shifts
        break;
      case "const":
        instructions += 2;
        break;
      case "neg":
      case "bitnot":
      case "abs":
        instructions += 2;
        stack.push([e.arg, n]);
        break;
      case "not":
        instructions += 5;
        stack.push([e.arg, n]);
        break;
      case "arith":
        instructions += e.operator === "/" || e.operator === "%" ? 14 : 1; // signed division
        stack.push([e.left, n]);
        operand(e.right, n);
        break;
      case "compare":
        instructions += 5;
        stack.push([e.left, n]);
        operand(e.right, n);
        break;
      case "and":
      case "or":
        instructions += 5;
        stack.push([e.left, n], [e.right, n]);
        break;
      case "cond":
        instructions += 2;
        stack.push([e.test, n], [e.then, n], [e.else, n]);
        break;
      case "min":
      case "max":
        stack.push([e.args[0], n]);
        for (const arg of e.args.slice(1)) {
          instructions += 2;
          operand(arg, n);
        }
        break;
      case "strcmp": {
        // Per 8 bytes (and the NUL of ===): load, mask by two shifts, a 64-bit constant, a jump.
        const bytes = new TextEncoder().encode(e.value).length + (e.mode === "eq" ? 1 : 0);
        instructions += 4 + 6 * Math.ceil(bytes / 8);
        break;
      }
    }
  }
  return { nesting, instructions };
}

/**
 * Throws a {@link LambdaError} saying the limit when `exprs` (a lambda's expression, or a key's
 * parts) nest deeper than {@link MAX_NESTING} or take more than {@link MAX_INSTRUCTIONS}.
 */
export function checkSize(exprs: readonly Expr[], source: string): void {
  const { nesting, instructions } = measure(exprs);
  if (nesting > MAX_NESTING) {
    throw new LambdaError(
      `it keeps ${nesting} operands waiting at once; the kernel's 512-byte stack leaves room ` +
        `for at most ${MAX_NESTING}: flatten it, a + (b + (c + d)) as a + b + c + d`,
      snippet(source),
    );
  }
  if (instructions > MAX_INSTRUCTIONS) {
    throw new LambdaError(
      `it compiles to about ${instructions} BPF instructions; a kernel lambda may take at ` +
        `most ${MAX_INSTRUCTIONS} (BPF jumps reach 32767): test fewer values or shorter strings`,
      snippet(source),
    );
  }
}
