/**
 * The kernel lambda compiler's front end: a JavaScript function such as
 * `(e, p) => e.ret > p.limit && e.comm !== "sshd"` to a typed {@link Expr}. Event fields come
 * from a {@link FieldResolver}, params are inlined as constants and constant subtrees are folded
 * with the kernel's 64-bit integer semantics.
 *
 * What the code generator can rely on:
 * - A node's `type` is its own: a field has the type its resolver gave. A conversion
 *   (`Number(x)`, `BigInt(x)`, a boolean taken as a number) is `x + 0` of the new type.
 * - A constant holds what a 64-bit register of its type holds: `BigInt.asUintN(64, v)` for an
 *   unsigned bigint, `BigInt.asIntN(64, v)` for anything else, 0n or 1n for a boolean. Bigint
 *   literals and params above 2^63 - 1 are unsigned bigints.
 * - Only bigints are ever unsigned results: arithmetic on numbers is signed, as a JavaScript
 *   number below 2^53 compares like a signed 64-bit integer. Comparisons are unsigned when an
 *   operand has an unsigned bigint type (as ir.ts says).
 * - `&&` and `||` give booleans where JavaScript gives an operand of the same truth; their
 *   operands are integers or booleans, true when nonzero.
 * - A `strcmp` value is compared as UTF-8 bytes and fits the field with its NUL (a longer
 *   one could never match and is rejected).
 * - Bit operators and shifts work on 64 bits (JavaScript numbers use 32), shift counts taken
 *   modulo 64; `/` truncates and `x / 0` is 0, which `Math.trunc()` therefore needs not do.
 *
 * @module
 */
import type * as acorn from "npm:acorn@8.19.0";
import { closeMatches } from "../../system/suggest.ts";
import {
  type ArithmeticOp,
  type ComparisonOp,
  type Expr,
  type FieldResolver,
  type KeyLambda,
  type Lambda,
  LambdaError,
  type ValueType,
} from "./ir.ts";
import { type AnyFunction, type ParsedFunction, parseFunction, staticKey } from "./parse.ts";
import { checkSize, checkSyntaxDepth } from "./limits.ts";
import { type KeyNamer, keyNamer } from "./key_namers.ts";

/**
 * Compiles `fn`, whose first parameter is the event and optional second the params, to one
 * integer or boolean expression.
 *
 * @param resolve types the event fields the lambda reads.
 * @param params the values of the second parameter, inlined as constants.
 * @throws {LambdaError} when the lambda uses anything the kernel cannot run.
 *
 * @example Filter on a field and a param
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { compileLambda } from "./compile.ts";
 * import { loadParser } from "./parse.ts";
 * await loadParser(); // loaded on first need, not with the module (see loadParser)
 * const { expr } = compileLambda(
 *   (e: { ret: number }, p: { limit: number }) => e.ret > p.limit * 1000,
 *   () => ({ type: { kind: "int", signed: true, bigint: false } }),
 *   { limit: 2 },
 * );
 * equal(expr.op === "compare" && expr.right.op === "const" && expr.right.value, 2000n);
 * ```
 */
export function compileLambda(
  fn: AnyFunction,
  resolve: FieldResolver,
  params?: Record<string, unknown>,
): Lambda {
  const c = new Compiler(parseFunction(fn), resolve, params);
  const body = c.body();
  const expr = c.value(c.term(body), body);
  checkSize([expr], c.source);
  return { expr, source: c.source };
}

/**
 * Compiles a key lambda: a top-level array literal (`(e) => [e.comm, e.args.fd]`) gives one
 * part per element, anything else one part. A part may be a string field (never a string
 * constant), besides what {@link compileLambda} accepts.
 *
 * @throws {LambdaError} when a part cannot be computed in the kernel.
 */
export function compileKeyLambda(
  fn: AnyFunction,
  resolve: FieldResolver,
  params?: Record<string, unknown>,
): KeyLambda {
  const c = new Compiler(parseFunction(fn), resolve, params);
  const body = c.body();
  const named = body.type === "ObjectExpression" ? c.namedParts(body) : undefined;
  const nodes = named?.map(([, n]) => n) ??
    (body.type === "ArrayExpression" ? c.list(body.elements, body) : [body as acorn.Expression]);
  if (nodes.length === 0) throw c.error("a key needs at least one part", body);
  const namers = nodes.map((n) => c.namerOf(n));
  const parts = nodes.map((n, i) => c.keyPart(namers[i] ? namers[i].argument : n));
  checkSize(parts, c.source);
  const names = named?.map(([name]) => name) ??
    partNames(parts).map((n, i) => namers[i]?.namer.part ?? n);
  return { parts, names, namers: namers.map((n) => n?.namer), source: c.source };
}

/**
 * Names for unnamed key parts: a field's last name (its whole path where two would clash),
 * else `key` (`key1`, `key2`, ... for several).
 */
function partNames(parts: readonly Expr[]): string[] {
  const path = (p: Expr) => p.op === "field" ? p.path : undefined;
  const last = parts.map((p) => path(p)?.at(-1));
  const names = parts.map((p, i) => {
    const name = last[i];
    if (name === undefined) return parts.length === 1 ? "key" : `key${i + 1}`;
    return last.indexOf(name) === last.lastIndexOf(name) ? name : path(p)!.join(".");
  });
  // Still clashing (the same field twice): numbered.
  return names.map((n, i) => names.indexOf(n) === i ? n : `${n}${i + 1}`);
}

/** A string field: only ever compared with a constant, or a key part. */
type StringField = { op: "field"; path: string[]; type: { kind: "string"; size: number } };
/** A string constant (a literal, a string param, a constant field): only ever compared. */
type StringConst = { op: "string"; value: string };
/** An array, only ever searched with `.includes()`. */
type ArrayTerm = { op: "array"; items: Term[] };
/** `undefined`, only ever compared with a field that may be unknown. */
type UndefinedTerm = { op: "undefined" };
/** What a subexpression denotes while compiling. */
type Term = Expr | StringConst | ArrayTerm | UndefinedTerm;
type Const = Extract<Expr, { op: "const" }>;

/** Where a parameter name leads: to a path in the event or in the params. */
type Binding = { root: "event" | "params"; path: string[] };

const INT: ValueType = { kind: "int", signed: true, bigint: false };
const UNDEFINED_ONLY =
  "undefined can only be compared (=== or !==) with a field that may be unknown, such as latencyNs";
const BIGINT: ValueType = { kind: "int", signed: true, bigint: true };
const U64: ValueType = { kind: "int", signed: false, bigint: true };
const BOOL: ValueType = { kind: "bool" };
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

const ARITHMETIC = new Set(["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", ">>>"]);
const ORDERING = new Set(["<", "<=", ">", ">="]);
const EQUALITY: Record<string, { operator: "==" | "!="; strict: boolean }> = {
  "==": { operator: "==", strict: false },
  "!=": { operator: "!=", strict: false },
  "===": { operator: "==", strict: true },
  "!==": { operator: "!=", strict: true },
};
const LOOPS = new Set([
  "ForStatement",
  "ForInStatement",
  "ForOfStatement",
  "WhileStatement",
  "DoWhileStatement",
]);
const NO_FUNCTIONS = "functions cannot be defined inside a kernel lambda";
const NO_TEMPLATES = "template literals are not supported";
/** Why the expressions that never compile are rejected, by node type. */
const UNSUPPORTED: Record<string, string> = {
  AssignmentExpression: "assignments are not allowed",
  UpdateExpression: "++ and -- are not allowed",
  NewExpression: "`new` is not supported",
  ThisExpression: "`this` is not available",
  ObjectExpression: "object literals are not supported",
  ChainExpression: "optional chaining (?.) is not supported; event fields are always present",
  TemplateLiteral: NO_TEMPLATES,
  TaggedTemplateExpression: NO_TEMPLATES,
  SequenceExpression: "comma sequences are not supported",
  ArrowFunctionExpression: NO_FUNCTIONS,
  FunctionExpression: NO_FUNCTIONS,
  ClassExpression: NO_FUNCTIONS,
};

/** One lambda's compilation: its parameters' bindings and the source for error snippets. */
class Compiler {
  readonly source: string;
  readonly #parsed: ParsedFunction;
  readonly #resolve: FieldResolver;
  readonly #params?: Record<string, unknown>;
  readonly #scope = new Map<string, Binding>();

  constructor(parsed: ParsedFunction, resolve: FieldResolver, params?: Record<string, unknown>) {
    this.source = parsed.source;
    // Before the recursive descent below, which a deep enough tree would overflow.
    checkSyntaxDepth(parsed.node, parsed.source);
    this.#parsed = parsed;
    this.#resolve = resolve;
    this.#params = params;
    const { node } = parsed;
    if (node.async || node.generator) {
      throw this.error(`${node.async ? "async" : "generator"} functions are not supported`, node);
    }
    const [event, p, extra] = node.params;
    if (extra) throw this.error("a lambda takes at most two parameters: event and params", extra);
    if (event) this.#bind(event, "event", []);
    if (p) this.#bind(p, "params", []);
  }

  /** A LambdaError quoting `node`'s source. */
  error(reason: string, node: acorn.Node): LambdaError {
    return new LambdaError(reason, this.#parsed.text(node));
  }

  /** The expression the function returns: its expression body or its only `return`. */
  body(): acorn.Expression {
    const { body } = this.#parsed.node;
    if (body.type !== "BlockStatement") return body;
    const [only] = body.body;
    if (body.body.length === 1 && only.type === "ReturnStatement" && only.argument) {
      return only.argument;
    }
    const offending = body.body.find((s) => s.type !== "ReturnStatement") ?? body;
    throw this.error(
      LOOPS.has(offending.type)
        ? "loops are not supported"
        : "a block body must be exactly one `return <expression>;`",
      offending,
    );
  }

  /** A key part's namer call, `syscallName(e.args.id)`: the namer and what it names. */
  namerOf(node: acorn.Expression): { namer: KeyNamer; argument: acorn.Expression } | undefined {
    if (node.type !== "CallExpression" || node.callee.type !== "Identifier") return undefined;
    const namer = keyNamer(node.callee.name);
    if (!namer) return undefined;
    const [argument, ...rest] = node.arguments;
    if (!argument || rest.length || argument.type === "SpreadElement") {
      throw this.error(`${node.callee.name}() takes one key value`, node);
    }
    return { namer, argument };
  }

  /** A key part: a kernel value or a string field. */
  keyPart(node: acorn.Expression): Expr {
    const t = this.term(node);
    if (t.op === "string") throw this.error("a string constant cannot be a key part", node);
    return isStringField(t) ? t : this.value(t, node);
  }

  /** `t` as an integer or boolean, which is all that arithmetic and logic take. */
  value(t: Term, node: acorn.Node): Expr {
    if (t.op === "array") throw this.error("arrays can only be used with .includes()", node);
    if (t.op === "undefined") throw this.error(UNDEFINED_ONLY, node);
    if (t.op === "string" || isStringField(t)) {
      throw this.error(
        "a string cannot be used as a number or a boolean; compare it with === or startsWith()",
        node,
      );
    }
    return t;
  }

  /** The parts of a named key, `({ comm: e.comm, fd: e.args.fd })`, by name in order. */
  namedParts(body: acorn.ObjectExpression): [string, acorn.Expression][] {
    const seen = new Set<string>();
    return body.properties.map((p) => {
      if (p.type === "SpreadElement") throw this.error("spread (...) is not supported", p);
      const name = staticKey(p.key, p.computed);
      if (name === undefined || p.kind !== "init" || p.method || p.shorthand) {
        throw this.error("a named key part is `name: expression`", p);
      }
      if (seen.has(name)) throw this.error(`the key part '${name}' is named twice`, p);
      seen.add(name);
      return [name, p.value as acorn.Expression];
    });
  }

  /** The expressions of an argument or element list, which must not spread or have holes. */
  list(items: (acorn.Expression | acorn.SpreadElement | null)[], at: acorn.Node) {
    return items.map((item) => {
      if (item === null) throw this.error("arrays with holes are not supported", at);
      if (item.type === "SpreadElement") throw this.error("spread (...) is not supported", item);
      return item;
    });
  }

  term(node: acorn.Expression | acorn.PrivateIdentifier | acorn.Super): Term {
    switch (node.type) {
      case "Literal":
        if (node.regex) throw this.error("regular expressions are not supported", node);
        return this.#constant(node.value, node, "the literal");
      case "Identifier":
      case "MemberExpression":
        return this.#reference(node);
      case "ArrayExpression":
        return { op: "array", items: this.list(node.elements, node).map((n) => this.term(n)) };
      case "UnaryExpression":
        return this.#unary(node);
      case "BinaryExpression":
        return this.#binary(node);
      case "LogicalExpression":
        if (node.operator === "??") throw this.error("?? is not supported", node);
        return logical(
          node.operator === "&&" ? "and" : "or",
          this.value(this.term(node.left), node.left),
          this.value(this.term(node.right), node.right),
        );
      case "ConditionalExpression":
        return this.#conditional(node);
      case "CallExpression":
        return this.#call(node);
      default:
        throw this.error(UNSUPPORTED[node.type] ?? "this construct is not supported", node);
    }
  }

  /** Binds the names a parameter declares, destructured or not, to paths under `root`. */
  #bind(pattern: acorn.Pattern, root: Binding["root"], path: string[]): void {
    if (pattern.type === "Identifier") {
      this.#scope.set(pattern.name, { root, path });
    } else if (pattern.type === "ObjectPattern") {
      for (const p of pattern.properties) {
        if (p.type === "RestElement") throw this.error("rest elements are not supported", p);
        const key = staticKey(p.key, p.computed);
        if (key === undefined) throw this.error("computed keys are not supported", p);
        this.#bind(p.value, root, [...path, key]);
      }
    } else {
      throw this.error(
        pattern.type === "AssignmentPattern"
          ? "default values are not supported"
          : "only object destructuring ({ a, b: { c } }) is supported",
        pattern,
      );
    }
  }

  /** A number, bigint, boolean, string or array (of the others) known at compile time. */
  #constant(value: unknown, node: acorn.Node, what: string, inArray = false): Term {
    switch (typeof value) {
      case "boolean":
        return bool(value);
      case "string":
        return { op: "string", value };
      case "number":
        if (!Number.isInteger(value)) {
          throw this.error(`${what} is ${value}, not an integer as kernel values are`, node);
        }
        if (value < -(2 ** 63) || value >= 2 ** 63) {
          throw this.error(`${what} is ${value}, beyond 64 bits`, node);
        }
        return konst(BigInt(value), INT);
      case "bigint":
        if (value < I64_MIN || value > U64_MAX) {
          throw this.error(`${what} is ${value}n, beyond 64 bits`, node);
        }
        return konst(value, value > I64_MAX ? U64 : BIGINT);
    }
    if (Array.isArray(value) && !inArray) {
      return {
        op: "array",
        items: value.map((v, i) => this.#constant(v, node, `${what}[${i}]`, true)),
      };
    }
    const kind = value === null ? "null" : Array.isArray(value) ? "a nested array" : typeof value;
    throw this.error(
      `${what} is ${kind}; only integers, bigints, booleans, strings and arrays of them ` +
        "can be used",
      node,
    );
  }

  /** A name or a member chain (`e.args.fd`, `p.limit`) of the event or the params. */
  #reference(node: acorn.Identifier | acorn.MemberExpression): Term {
    const path: string[] = [];
    let at: acorn.Expression | acorn.Super = node;
    while (at.type === "MemberExpression") {
      const key = staticKey(at.property, at.computed);
      if (key === undefined) throw this.error("computed member access is not supported", at);
      path.unshift(key);
      at = at.object;
    }
    if (at.type !== "Identifier") {
      throw this.error("properties can only be read from the event and the params", node);
    }
    const { name } = at;
    const binding = this.#scope.get(name);
    if (!binding && name === "undefined" && path.length === 0) return { op: "undefined" };
    if (!binding) {
      throw this.error(
        name in globalThis
          ? `the global \`${name}\` is not available in the kernel`
          : `\`${name}\` is not a field or a param; pass it through params: ` +
            `.where((e, p) => ..., { ${name} })`,
        node,
      );
    }
    const full = [...binding.path, ...path];
    return binding.root === "event" ? this.#field(full, node) : this.#param(full, node);
  }

  #field(path: string[], node: acorn.Node): Term {
    if (path.length === 0) {
      throw this.error("the event itself is not a value; use one of its fields", node);
    }
    const info = this.#resolve(path);
    if (info && "type" in info) return { op: "field", path, type: info.type };
    if (info) return this.#constant(info.constant, node, `event field \`${path.join(".")}\``);
    // Say which part is wrong: a property of a field (e.pid.x), or the field name itself.
    for (let n = path.length - 1; n > 0; n--) {
      if (this.#resolve(path.slice(0, n))) {
        const outer = path.slice(0, n).join(".");
        throw this.error(`event field \`${outer}\` has no property \`${path[n]}\``, node);
      }
    }
    throw this.error(`no such event field \`${path.join(".")}\``, node);
  }

  #param(path: string[], node: acorn.Node): Term {
    if (this.#params === undefined) {
      throw this.error("no params were given: pass them as in .where((e, p) => ..., { x })", node);
    }
    if (path.length === 0) {
      throw this.error("the params object itself is not a value; use one of its properties", node);
    }
    let value: unknown = this.#params;
    for (const [i, key] of path.entries()) {
      if (!isRecord(value) || !Object.hasOwn(value, key)) {
        const near = isRecord(value) ? closeMatches(key, Object.keys(value)) : [];
        const hint = near.length > 0 ? ` (did you mean ${near.join(", ")}?)` : "";
        throw this.error(`no param \`${path.slice(0, i + 1).join(".")}\`${hint}`, node);
      }
      value = value[key];
    }
    return this.#constant(value, node, `param \`${path.join(".")}\``);
  }

  #unary(node: acorn.UnaryExpression): Expr {
    const { operator } = node;
    if (operator === "typeof" || operator === "void" || operator === "delete") {
      throw this.error(`\`${operator}\` is not supported`, node);
    }
    const arg = this.value(this.term(node.argument), node.argument);
    if (operator === "!") return not(arg);
    if (operator === "+") {
      if (isBigint(arg.type)) throw this.error("unary + throws on a bigint in JavaScript", node);
      return numeric(arg);
    }
    const type = isBigint(arg.type) ? arg.type : INT;
    if (arg.op === "const") return konst(operator === "-" ? -arg.value : ~arg.value, type);
    return { op: operator === "-" ? "neg" : "bitnot", arg, type };
  }

  #binary(node: acorn.BinaryExpression): Expr {
    const { operator } = node;
    const equality = EQUALITY[operator];
    if (!equality && !ARITHMETIC.has(operator) && !ORDERING.has(operator)) {
      throw this.error(`\`${operator}\` is not supported`, node);
    }
    const left = this.term(node.left);
    const right = this.term(node.right);
    if (equality) return this.#equals(left, right, equality.operator, equality.strict, node);
    if (isString(left) || isString(right)) {
      throw this.error(
        ORDERING.has(operator)
          ? "strings cannot be ordered, only compared with === or startsWith()"
          : "string arithmetic and concatenation are not supported",
        node,
      );
    }
    const l = this.value(left, node.left);
    const r = this.value(right, node.right);
    if (ORDERING.has(operator)) return compare(operator as ComparisonOp, l, r);
    const type = this.#joinInts(l, r, node);
    if (operator === ">>>" && type.kind === "int" && type.bigint) {
      throw this.error(">>> throws on bigints in JavaScript; use >>", node);
    }
    return arith(operator as ArithmeticOp, l, r, type);
  }

  /**
   * The type of arithmetic on (or a choice between) two integers. Only a bigint can be
   * unsigned: a JavaScript number is exact where it fits in 53 bits, and there signed 64-bit
   * arithmetic gives the same answers (`e.u32 - 10 < 0` holds for small values).
   */
  #joinInts(l: Expr, r: Expr, node: acorn.Node): ValueType {
    const bigint = isBigint(l.type);
    if (bigint !== isBigint(r.type)) {
      throw this.error("mixes bigint and number; use BigInt(x) or Number(x)", node);
    }
    return { kind: "int", signed: !isUnsigned(l.type) && !isUnsigned(r.type), bigint };
  }

  /**
   * `a == b` or `a != b`. Strict equality (and `includes()`) never finds a bigint equal to a
   * number, nor a boolean to a number, so such comparisons are errors rather than silently
   * different from JavaScript.
   */
  #equals(a: Term, b: Term, operator: "==" | "!=", strict: boolean, node: acorn.Node): Expr {
    if (a.op === "undefined" || b.op === "undefined") {
      // A field that may be unknown holds -1 (all ones) in the kernel where JavaScript sees
      // undefined.
      const other = a.op === "undefined" ? b : a;
      if (other.op !== "field" || other.type.kind !== "int" || !other.type.optional) {
        throw this.error(UNDEFINED_ONLY, node);
      }
      return compare(operator, other, { op: "const", value: -1n, type: other.type });
    }
    if (isString(a) || isString(b)) {
      const eq = this.#stringEquals(a, b, node);
      return operator === "==" ? eq : not(eq);
    }
    const l = this.value(a, node);
    const r = this.value(b, node);
    if (strict && (l.type.kind !== r.type.kind || isBigint(l.type) !== isBigint(r.type))) {
      const hint = isBigint(l.type) || isBigint(r.type) ? "; use BigInt(x) or Number(x)" : "";
      throw this.error(
        `compares ${typeName(l.type)} with ${typeName(r.type)}, which === and includes() ` +
          `never find equal${hint}`,
        node,
      );
    }
    return compare(operator, l, r);
  }

  #stringEquals(a: Term, b: Term, node: acorn.Node): Expr {
    if (!isString(a) || !isString(b)) {
      throw this.error("compares a string with something that is not a string", node);
    }
    const [constant, other] = a.op === "string" ? [a, b] : [b, a];
    if (constant.op !== "string") {
      throw this.error("compares two string fields; strings compare only with constants", node);
    }
    if (other.op === "string") return bool(other.value === constant.value);
    return this.#strcmp("eq", other, constant.value, node);
  }

  #strcmp(mode: "eq" | "prefix", field: StringField, value: string, node: acorn.Node): Expr {
    const bytes = new TextEncoder().encode(value).length;
    const room = field.type.size - 1;
    if (bytes > room) {
      const name = field.path.join(".");
      throw this.error(
        `${JSON.stringify(value)} is ${bytes} bytes, but \`${name}\` holds at ` +
          `most ${room}: it never matches`,
        node,
      );
    }
    if (mode === "prefix" && value === "") return bool(true);
    return { op: "strcmp", mode, field, value, type: BOOL };
  }

  #conditional(node: acorn.ConditionalExpression): Expr {
    const test = this.value(this.term(node.test), node.test);
    const a = this.value(this.term(node.consequent), node.consequent);
    const b = this.value(this.term(node.alternate), node.alternate);
    if (a.type.kind !== b.type.kind) {
      throw this.error("the branches of ?: must both be numbers or both booleans", node);
    }
    const type = a.type.kind === "bool" ? BOOL : this.#joinInts(a, b, node);
    if (test.op === "const") return retype(test.value !== 0n ? a : b, type);
    return { op: "cond", test, then: a, else: b, type };
  }

  #call(node: acorn.CallExpression): Expr {
    const { callee } = node;
    const name = this.#parsed.text(callee);
    const args = (min: number, max = min) => {
      const list = this.list(node.arguments, node);
      if (list.length < min || list.length > max) {
        const count = max === min ? `${min}` : `at least ${min}`;
        throw this.error(`${name}() takes ${count} argument(s)`, node);
      }
      return list;
    };
    const values = (min: number, max = min) =>
      args(min, max).map((a) => this.value(this.term(a), a));
    const numbers = (min: number, max = min) => {
      const list = values(min, max);
      if (list.some((a) => isBigint(a.type))) {
        throw this.error(`${name}() throws on bigints in JavaScript; use Number(x)`, node);
      }
      return list.map(numeric);
    };
    const builtin = this.#builtin(callee);
    switch (builtin) {
      case "Number": {
        const [x] = values(1);
        return retype(x, x.type.kind === "int" ? { ...x.type, bigint: false } : INT);
      }
      case "BigInt": {
        const [x] = values(1);
        return isBigint(x.type) ? x : retype(x, BIGINT);
      }
      case "Math.abs": {
        const [x] = numbers(1);
        if (x.op === "const") return konst(x.value < 0n ? -x.value : x.value, INT);
        return { op: "abs", arg: x, type: INT };
      }
      case "Math.trunc":
        // Kernel values are integers already.
        return numbers(1)[0];
      case "Math.min":
      case "Math.max":
        return minMax(builtin === "Math.min" ? "min" : "max", numbers(1, Infinity));
    }
    if (callee.type === "MemberExpression") {
      const method = staticKey(callee.property, callee.computed);
      if (method === "includes" || method === "startsWith") {
        const [arg] = args(1);
        const subject = this.term(callee.object);
        return method === "includes"
          ? this.#includes(subject, this.term(arg), node)
          : this.#startsWith(subject, this.term(arg), node);
      }
    }
    throw this.error(`calling \`${name}\` is not supported`, node);
  }

  /** Which builtin a callee names (`Number`, `Math.min`), unless a parameter shadows it. */
  #builtin(callee: acorn.Expression | acorn.Super): string | undefined {
    if (callee.type === "Identifier" && !this.#scope.has(callee.name)) return callee.name;
    if (
      callee.type === "MemberExpression" && callee.object.type === "Identifier" &&
      callee.object.name === "Math" && !this.#scope.has("Math")
    ) {
      return `Math.${staticKey(callee.property, callee.computed)}`;
    }
    return undefined;
  }

  /** `[a, b].includes(x)` as `a === x || b === x`. */
  #includes(list: Term, needle: Term, node: acorn.CallExpression): Expr {
    if (list.op !== "array") {
      throw this.error(
        isString(list) ? "only startsWith() and === work on strings" : "includes() needs an array",
        node,
      );
    }
    return list.items.reduce<Expr>(
      (found, item) => logical("or", found, this.#equals(item, needle, "==", true, node)),
      bool(false),
    );
  }

  #startsWith(subject: Term, prefix: Term, node: acorn.CallExpression): Expr {
    if (!isString(subject)) throw this.error("startsWith() needs a string", node);
    if (prefix.op !== "string") {
      throw this.error("startsWith() needs a constant string argument", node);
    }
    if (subject.op === "string") return bool(subject.value.startsWith(prefix.value));
    return this.#strcmp("prefix", subject, prefix.value, node);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isStringField(t: Term): t is StringField {
  return t.op === "field" && t.type.kind === "string";
}

function isString(t: Term): t is StringField | StringConst {
  return t.op === "string" || isStringField(t);
}

function isBigint(t: ValueType): boolean {
  return t.kind === "int" && t.bigint;
}

/** Only unsigned bigints compute unsigned; see Compiler.#joinInts. */
function isUnsigned(t: ValueType): boolean {
  return t.kind === "int" && t.bigint && !t.signed;
}

function typeName(t: ValueType): string {
  return t.kind === "bool" ? "a boolean" : isBigint(t) ? "a bigint" : "a number";
}

/** A constant, its value reduced to what a 64-bit register of its type holds. */
function konst(value: bigint, type: ValueType): Const {
  const v = type.kind === "bool"
    ? BigInt(value !== 0n)
    : isUnsigned(type)
    ? BigInt.asUintN(64, value)
    : BigInt.asIntN(64, value);
  return { op: "const", value: v, type };
}

function bool(value: boolean): Const {
  return konst(BigInt(value), BOOL);
}

/**
 * `x` with another type, as after `Number(x)`: a constant converts; anything else becomes
 * `x + 0` of that type, so that a node's type is always its own (a field keeps the type its
 * resolver gave, a comparison stays a boolean).
 */
function retype(x: Expr, type: ValueType): Expr {
  return sameType(x.type, type) ? x : arith("+", x, konst(0n, type), type);
}

function sameType(a: ValueType, b: ValueType): boolean {
  if (a.kind === "int" && b.kind === "int") return a.signed === b.signed && a.bigint === b.bigint;
  return a.kind === b.kind;
}

/** A boolean as the number 0 or 1, which is what arithmetic and Math.* make of it. */
function numeric(x: Expr): Expr {
  return x.type.kind === "bool" ? retype(x, INT) : x;
}

function not(x: Expr): Expr {
  return x.op === "const" ? bool(x.value === 0n) : { op: "not", arg: x, type: BOOL };
}

/** Reads `v` as the kernel's comparison or arithmetic does: as u64, or as s64. */
function as64(v: bigint, unsigned: boolean): bigint {
  return unsigned ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v);
}

function arith(operator: ArithmeticOp, left: Expr, right: Expr, type: ValueType): Expr {
  if (left.op !== "const" || right.op !== "const") {
    return { op: "arith", operator, left, right, type };
  }
  const unsigned = isUnsigned(type);
  const a = as64(left.value, unsigned);
  const b = as64(right.value, unsigned);
  // Shift counts wrap at 64, as the CPU does for a 64-bit shift.
  const shift = BigInt.asUintN(6, b);
  const results: Record<ArithmeticOp, () => bigint> = {
    "+": () => a + b,
    "-": () => a - b,
    "*": () => a * b,
    // BigInt division truncates toward zero; BPF divides by zero without trapping.
    "/": () => (b === 0n ? 0n : a / b),
    "%": () => (b === 0n ? a : a % b),
    "&": () => a & b,
    "|": () => a | b,
    "^": () => a ^ b,
    "<<": () => a << shift,
    ">>": () => a >> shift,
    ">>>": () => BigInt.asUintN(64, a) >> shift,
  };
  return konst(results[operator](), type);
}

function compare(operator: ComparisonOp, left: Expr, right: Expr): Expr {
  if (left.op !== "const" || right.op !== "const") {
    return { op: "compare", operator, left, right, type: BOOL };
  }
  const unsigned = isUnsigned(left.type) || isUnsigned(right.type);
  const a = as64(left.value, unsigned);
  const b = as64(right.value, unsigned);
  const results: Record<ComparisonOp, boolean> = {
    "==": a === b,
    "!=": a !== b,
    "<": a < b,
    "<=": a <= b,
    ">": a > b,
    ">=": a >= b,
  };
  return bool(results[operator]);
}

/**
 * `&&` or `||`, which give a boolean in the kernel where JavaScript gives an operand (the same
 * truth value). Kernel expressions have no side effects, so a constant operand settles or
 * drops out whichever side it is on.
 */
function logical(op: "and" | "or", left: Expr, right: Expr): Expr {
  if (left.op === "const" && right.op === "const") {
    const [a, b] = [left.value !== 0n, right.value !== 0n];
    return bool(op === "and" ? a && b : a || b);
  }
  for (const [c, other] of [[left, right], [right, left]]) {
    if (c.op !== "const") continue;
    const truthy = c.value !== 0n;
    if (truthy === (op === "or")) return bool(truthy);
    if (other.type.kind === "bool") return other;
  }
  return { op, left, right, type: BOOL };
}

function minMax(op: "min" | "max", args: Expr[]): Expr {
  if (args.length === 1) return args[0];
  if (!args.every((a) => a.op === "const")) return { op, args, type: INT };
  const values = args.map((a) => (a as Const).value);
  const pick = (x: bigint, y: bigint) => ((op === "min" ? y < x : y > x) ? y : x);
  return konst(values.reduce(pick), INT);
}
