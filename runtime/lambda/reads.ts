/**
 * Which event fields a JavaScript handler reads, worked out from its source, so that the
 * kernel captures only those. Handlers here are arbitrary code, not kernel lambdas: anything
 * this cannot follow reads the whole event.
 *
 * @module
 */
import type * as acorn from "npm:acorn@8.19.0";
import { LambdaError } from "./ir.ts";
import { type AnyFunction, parseFunction, staticKey } from "./parse.ts";

/**
 * True for a handler that cannot see its event: it declares no parameter and never names
 * `arguments`. Known without parsing (`() => count++`).
 */
export function readsNothing(fn: AnyFunction): boolean {
  return fn.length === 0 && !/\barguments\b/.test(fn.toString()) &&
    /^\s*(async\s*)?\(\s*\)\s*=>/.test(fn.toString());
}

/**
 * The member paths of its first parameter (the event) that `fn` reads, or "all" when it may
 * read the event in a way no path describes: passing it on, `e[k]`, `e.method()`, spreading,
 * `arguments`, `eval`, `with`, or a native or bound function.
 *
 * How to match the paths with fields:
 * - A path stands for everything under it: `["args"]` means every field under `args`.
 * - A path is the whole static member chain, which may run past a field into its value:
 *   `e.args.filename.length` gives `["args", "filename", "length"]`. Take the field that is its
 *   longest prefix, else every field under it.
 * - A chain that is called loses its last name (the method): `e.comm.trim()` gives `["comm"]`.
 *
 * Paths come in the order the source first reads them, without duplicates or paths under
 * another path. Destructuring gives the destructured paths (`({ args: { fd } })` gives
 * `["args", "fd"]`); names that inner functions or blocks declare again hide the event.
 *
 * @example A handler that logs two fields
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { eventReads } from "./reads.ts";
 * import { loadParser } from "./parse.ts";
 * await loadParser(); // without it, eventReads throws: it cannot parse
 * const handler = (e: { comm: string; args: { filename: string } }) =>
 *   console.log(e.comm, e.args.filename);
 * deepEqual(eventReads(handler), [["comm"], ["args", "filename"]]);
 * ```
 */
export function eventReads(fn: AnyFunction): string[][] | "all" {
  if (readsNothing(fn)) return [];
  let node;
  try {
    node = parseFunction(fn).node;
  } catch (error) {
    if (error instanceof LambdaError) return "all";
    throw error;
  }
  const [first, ...rest] = node.params;
  if (!first) return [];
  const event = withoutDefault(first);
  const reads = new Reads();
  const name = event.type === "Identifier" ? event.name : undefined;
  if (name === undefined) {
    // Destructured where it arrives; only `arguments` and `eval` reach it in the code.
    for (const path of patternPaths(event)) reads.add(path);
  }
  // The other parameters' default values may read the event too.
  new Walker(name, reads).visitAll([...rest, node.body]);
  return reads.result();
}

/**
 * The name a handler gives its event (`ev` in `(ev) => ...`), for saying what it read as it
 * wrote it; undefined when it destructures the event or takes none.
 */
export function eventName(fn: AnyFunction): string | undefined {
  const [first] = parseFunction(fn).node.params;
  const event = first && withoutDefault(first);
  return event?.type === "Identifier" ? event.name : undefined;
}

/** A parameter's pattern, its default value aside. */
function withoutDefault(param: acorn.Pattern): acorn.Pattern {
  return param.type === "AssignmentPattern" ? param.left : param;
}

/** The paths read so far; the empty path is the whole event. */
class Reads {
  #all = false;
  readonly #paths: string[][] = [];

  get all(): boolean {
    return this.#all;
  }

  add(path: string[]): void {
    if (path.length === 0) this.#all = true;
    else this.#paths.push(path);
  }

  result(): string[][] | "all" {
    if (this.#all) return "all";
    const key = (p: string[]) => JSON.stringify(p);
    const read = new Set(this.#paths.map(key));
    const kept = new Set<string>();
    return this.#paths.filter((p) => {
      const k = key(p);
      const covered = p.slice(1).some((_, n) => read.has(key(p.slice(0, n + 1))));
      if (covered || kept.has(k)) return false;
      kept.add(k);
      return true;
    });
  }
}

/**
 * The paths a destructuring pattern reads from its value: `{ a, b: { c } }` reads `["a"]` and
 * `["b", "c"]`. `[[]]`, the whole value, for a name, an array pattern, a rest element or a
 * computed key.
 */
function patternPaths(pattern: acorn.Pattern): string[][] {
  if (pattern.type === "AssignmentPattern") return patternPaths(pattern.left);
  if (pattern.type !== "ObjectPattern") return [[]];
  return pattern.properties.flatMap((p) => {
    const key = p.type === "Property" ? staticKey(p.key, p.computed) : undefined;
    if (p.type !== "Property" || key === undefined) return [[]];
    return patternPaths(p.value).map((path) => [key, ...path]);
  });
}

/** Walks a handler's code, recording how each reference to the event uses it. */
class Walker {
  readonly #name: string | undefined;
  readonly #reads: Reads;
  /** The nodes from the root down to the one being visited. */
  readonly #parents: acorn.AnyNode[] = [];

  constructor(name: string | undefined, reads: Reads) {
    this.#name = name;
    this.#reads = reads;
  }

  visitAll(nodes: acorn.Node[]): void {
    for (const n of nodes) this.#visit(n as acorn.AnyNode);
  }

  #visit(node: acorn.AnyNode): void {
    if (this.#reads.all || this.#hides(node)) return;
    if (node.type === "WithStatement") {
      this.#reads.add([]);
      return;
    }
    if (node.type === "Identifier") return this.#identifier(node);
    this.#parents.push(node);
    for (const [key, value] of Object.entries(node as unknown as Record<string, unknown>)) {
      if (isNameOnly(node, key)) continue;
      for (const child of Array.isArray(value) ? value : [value]) {
        if (isNode(child)) this.#visit(child);
      }
    }
    this.#parents.pop();
  }

  /**
   * Whether `n` declares the event's name again for all of its code. Where a declaration
   * hides it from only part of the code, too fine a scope to follow, the whole event is read.
   */
  #hides(n: acorn.AnyNode): boolean {
    const name = this.#name;
    if (name === undefined) return false;
    switch (n.type) {
      case "FunctionExpression":
      case "ClassExpression":
        // A function or class expression's own name is visible only inside it.
        if (n.id?.name === name) return true;
        return n.type === "FunctionExpression" && n.params.some((p) => binds(p, name));
      case "ArrowFunctionExpression":
      case "FunctionDeclaration":
        return n.params.some((p) => binds(p, name));
      case "CatchClause":
        return n.param ? binds(n.param, name) : false;
      case "BlockStatement":
      case "StaticBlock":
        return n.body.some((s) => declaresLexically(s, name));
      case "ForStatement":
        return n.init?.type === "VariableDeclaration" && declaresLexically(n.init, name);
      case "ForInStatement":
      case "ForOfStatement":
        return n.left.type === "VariableDeclaration" && declaresLexically(n.left, name);
      case "SwitchStatement":
        // The cases share a scope that the discriminant is outside of: too fine to follow.
        if (n.cases.some((c) => c.consequent.some((s) => declaresLexically(s, name)))) {
          this.#reads.add([]);
        }
        return false;
      default:
        return false;
    }
  }

  #identifier(node: acorn.Identifier): void {
    // Both can reach the event without naming it.
    if (node.name === "arguments" || node.name === "eval") {
      this.#reads.add([]);
      return;
    }
    if (node.name !== this.#name) return;
    const path: string[] = [];
    let at: acorn.Node = node;
    let i = this.#parents.length - 1;
    for (; i >= 0; i--) {
      const parent = this.#parents[i];
      if (parent.type !== "MemberExpression" || parent.object !== at) break;
      const key = staticKey(parent.property, parent.computed);
      if (key === undefined) break;
      path.push(key);
      at = parent;
    }
    const user = i >= 0 ? this.#parents[i] : undefined;
    if (
      (user?.type === "CallExpression" && user.callee === at) ||
      (user?.type === "TaggedTemplateExpression" && user.tag === at)
    ) {
      // A method call: the method is not data, but `this` is what it reads.
      path.pop();
    } else if (user?.type === "VariableDeclarator" && user.init === at) {
      // `const { comm, args: { fd } } = e`
      for (const p of patternPaths(user.id)) this.#reads.add([...path, ...p]);
      return;
    }
    this.#reads.add(path);
  }
}

function isNode(value: unknown): value is acorn.AnyNode {
  return typeof value === "object" && value !== null && "type" in value &&
    typeof value.type === "string";
}

/** Whether `key` of `node` holds a name rather than an expression (`x.name`, `{ name: 1 }`). */
function isNameOnly(node: acorn.AnyNode, key: string): boolean {
  switch (node.type) {
    case "MemberExpression":
      return key === "property" && !node.computed;
    case "Property":
    case "MethodDefinition":
    case "PropertyDefinition":
      return key === "key" && !node.computed;
    case "LabeledStatement":
    case "BreakStatement":
    case "ContinueStatement":
      return key === "label";
    case "MetaProperty":
      return true;
    default:
      return false;
  }
}

/** Whether a declaration pattern binds `name`. */
function binds(pattern: acorn.Pattern, name: string): boolean {
  switch (pattern.type) {
    case "Identifier":
      return pattern.name === name;
    case "ObjectPattern":
      return pattern.properties.some((p) =>
        binds(p.type === "Property" ? p.value : p.argument, name)
      );
    case "ArrayPattern":
      return pattern.elements.some((p) => p !== null && binds(p, name));
    case "RestElement":
      return binds(pattern.argument, name);
    case "AssignmentPattern":
      return binds(pattern.left, name);
    default:
      return false;
  }
}

/** Whether a statement declares `name` for its whole block (`let`, `const`, `class`). */
function declaresLexically(statement: acorn.Node, name: string): boolean {
  const s = statement as acorn.AnyNode;
  if (s.type === "ClassDeclaration") return s.id?.name === name;
  return s.type === "VariableDeclaration" && s.kind !== "var" &&
    s.declarations.some((d) => binds(d.id, name));
}
