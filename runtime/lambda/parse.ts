/**
 * A JavaScript function's own source read back as an acorn syntax tree: the input of the
 * kernel lambda compiler and of the analysis of which event fields a handler reads.
 *
 * @module
 */
import type * as acorn from "npm:acorn@8.19.0";

let parser: typeof acorn | undefined;

/**
 * Loads the parser. It is loaded when first needed rather than with this module, so scripts
 * start without paying for it (about 12 ms and 4 MB) until a lambda is compiled.
 */
export async function loadParser(): Promise<void> {
  parser ??= await import("npm:acorn@8.19.0");
}

/** Whether the parser is loaded: a run whose consumers have no lambda never loads it. */
export function parserLoaded(): boolean {
  return parser !== undefined;
}
import { LambdaError } from "./ir.ts";
import { tooDeepSyntax } from "./limits.ts";

/** Any function value: its source is all this module looks at. */
export type AnyFunction = (...args: never[]) => unknown;

/** An arrow function, or a `function` expression (which is what a method parses to). */
export type FunctionNode = acorn.ArrowFunctionExpression | acorn.FunctionExpression;

/** A function's syntax tree and the text it came from. */
export interface ParsedFunction {
  /** The function's source, as `Function.prototype.toString` gives it. */
  source: string;
  node: FunctionNode;
  /** The exact source text of a node of `node`'s tree, for error messages. */
  text(node: acorn.Node): string;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/**
 * Parses `fn`'s source. Arrow functions and `function`s parse as an expression; a method
 * (`name(e) { ... }`, which is what `toString` gives for object and class methods) parses only
 * inside an object literal, so both wrappings are tried. Async and generator functions parse
 * too: whoever needs a plain function rejects them.
 *
 * @throws {LambdaError} for native and bound functions, whose source is `[native code]`, and
 * for source that parses neither way.
 *
 * @example Parse an arrow function
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { loadParser, parseFunction } from "./parse.ts";
 * await loadParser(); // loaded on first need, not with the module (see loadParser)
 * const f = parseFunction((e: { pid: number }) => e.pid > 1);
 * equal(f.text(f.node.body), "e.pid > 1");
 * ```
 */
export function parseFunction(fn: AnyFunction): ParsedFunction {
  const source = Function.prototype.toString.call(fn);
  if (NATIVE.test(source)) {
    throw new LambdaError(
      "a native or bound function has no source to read; pass the function itself, written inline",
      source,
    );
  }
  // The newline keeps a trailing line comment from swallowing the closing bracket.
  for (const [open, close] of [["(", "\n)"], ["({", "\n})"]]) {
    const text = open + source + close;
    const node = functionIn(text, source);
    if (node) return { source, node, text: (n) => text.slice(n.start, n.end) };
  }
  throw new LambdaError("the function's source does not parse", source);
}

/** The function that `text` consists of (bare or as an object's only method), if it does. */
function functionIn(text: string, source: string): FunctionNode | undefined {
  // Not a LambdaError: a caller's mistake must not read as "does not parse" (or, to
  // eventReads, as "reads every field").
  if (!parser) throw new Error("internal: the lambda parser was not loaded (await loadParser())");
  let program: acorn.Program;
  try {
    program = parser.parse(text, { ecmaVersion: "latest", sourceType: "script" });
  } catch (e) {
    // The parser recurses: source nested deep enough overflows the stack (acorn says so).
    if (/call stack|stack space/.test((e as Error).message)) throw tooDeepSyntax(source);
    return undefined;
  }
  const [statement] = program.body;
  if (program.body.length !== 1 || statement.type !== "ExpressionStatement") return undefined;
  const e = statement.expression;
  if (e.type === "ArrowFunctionExpression" || e.type === "FunctionExpression") return e;
  const [method] = e.type === "ObjectExpression" ? e.properties : [];
  if (method?.type === "Property" && method.value.type === "FunctionExpression") {
    return method.value;
  }
  return undefined;
}

/**
 * The name a property key stands for when it is fixed in the source: `a` in `x.a` and `{ a }`,
 * `"a"` in `x["a"]` and `{ "a": y }`; undefined for computed keys such as `x[i]`.
 */
export function staticKey(key: acorn.Node, computed: boolean): string | undefined {
  if (key.type === "Identifier" && !computed) return (key as acorn.Identifier).name;
  const value = key.type === "Literal" ? (key as acorn.Literal).value : undefined;
  return typeof value === "string" ? value : undefined;
}
