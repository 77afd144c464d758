/**
 * The typed expression tree a kernel lambda compiles to: what the front end (parsing a
 * handler's source) produces and the BPF code generator consumes. Every value is a 64-bit
 * integer in the kernel; strings exist only as fixed-size char arrays in the event record and
 * only take part in comparisons against constants.
 *
 * @module
 */
import type { KeyNamer } from "./key_namers.ts";

/** The type of a value in a kernel lambda. */
export type ValueType =
  /**
   * An integer. `bigint`: JavaScript sees a bigint (u64 fields, pointers), else a number.
   * `optional`: a field whose all-ones value (-1) means "not known", which JavaScript sees as
   * `undefined` (a latency whose start was not seen).
   */
  | { kind: "int"; signed: boolean; bigint: boolean; optional?: boolean }
  /** The result of a comparison or logical operator: 0 or 1 in the kernel. */
  | { kind: "bool" }
  /** A NUL-terminated char array of `size` bytes. */
  | { kind: "string"; size: number };

/** What the front end knows of an event field: its type, or a value fixed at compile time. */
export type FieldInfo =
  | { type: ValueType }
  | { constant: number | bigint | string | boolean };

/** Resolves a member path of the event (`["args", "fd"]`); undefined when there is none. */
export type FieldResolver = (path: readonly string[]) => FieldInfo | undefined;

export type ArithmeticOp = "+" | "-" | "*" | "/" | "%" | "&" | "|" | "^" | "<<" | ">>" | ">>>";
export type ComparisonOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

/**
 * An expression. Integer semantics are 64-bit two's complement; `/` and `%` truncate toward
 * zero and give 0 (for `/`) or the dividend (for `%`) when dividing by zero, as BPF does.
 * Arithmetic and comparisons are signed unless an operand has an unsigned bigint type.
 */
export type Expr =
  /** A field of the event, read from the record the kernel filled. */
  | { op: "field"; path: string[]; type: ValueType }
  /** An integer or boolean constant (booleans as 0n/1n with type bool). */
  | { op: "const"; value: bigint; type: ValueType }
  | { op: "neg" | "not" | "bitnot"; arg: Expr; type: ValueType }
  | { op: "arith"; operator: ArithmeticOp; left: Expr; right: Expr; type: ValueType }
  | { op: "compare"; operator: ComparisonOp; left: Expr; right: Expr; type: ValueType }
  | { op: "and" | "or"; left: Expr; right: Expr; type: ValueType }
  | { op: "cond"; test: Expr; then: Expr; else: Expr; type: ValueType }
  /**
   * A string field against a constant: `eq` is `field === value`, `prefix` is
   * `field.startsWith(value)`. Type bool.
   */
  | {
    op: "strcmp";
    mode: "eq" | "prefix";
    field: Expr & { op: "field" };
    value: string;
    type: ValueType;
  }
  | { op: "min" | "max"; args: Expr[]; type: ValueType }
  | { op: "abs"; arg: Expr; type: ValueType };

/** The direct subexpressions of `e` (a string comparison's field is not one). */
export function children(e: Expr): Expr[] {
  switch (e.op) {
    case "field":
    case "strcmp":
    case "const":
      return [];
    case "neg":
    case "not":
    case "bitnot":
    case "abs":
      return [e.arg];
    case "cond":
      return [e.test, e.then, e.else];
    case "min":
    case "max":
      return e.args;
    default:
      return [e.left, e.right];
  }
}

/** A compiled lambda: its expression and the source text it came from (for listings). */
export interface Lambda {
  expr: Expr;
  source: string;
}

/** A key lambda may produce several parts: `(e) => [e.comm, e.args.fd]`. */
export interface KeyLambda {
  parts: Expr[];
  /** Each part's name: as the lambda names it (`({ comm: e.comm })`), else derived. */
  names: string[];
  /** Per part, the namer that shows it (`syscallName(e.args.id)`), if any. */
  namers: (KeyNamer | undefined)[];
  source: string;
}

/** The constructs a kernel lambda may use, quoted by every {@link LambdaError}. */
export const SUPPORTED =
  "event fields (e.x, e.args.y), params (p.x), number and bigint literals, + - * / % & | ^ " +
  "<< >> >>> ~ unary -, comparisons, && || !, ?:, string === !== and startsWith() against " +
  "constants, latencyNs === / !== undefined, [constants].includes(x), Math.min/max/abs/trunc, Number(), BigInt()";

/** A lambda that cannot run in the kernel; the message quotes the exact source text. */
export class LambdaError extends TypeError {
  /** The source text of the construct that was rejected. */
  readonly snippet: string;
  /** Why `snippet`, a construct of the lambda's source, cannot run in the kernel. */
  constructor(reason: string, snippet: string) {
    super(`Cannot compile for the kernel: ${reason} in \`${snippet}\` (supported: ${SUPPORTED})`);
    this.name = "LambdaError";
    this.snippet = snippet;
  }
}
