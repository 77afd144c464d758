/**
 * The first pass of planning: how a stream's events map to the record fields of one probe site
 * (a view), and the lambdas over a view compiled to expressions on record paths (predicates,
 * keys, values), with string equality lowered to integer comparisons where a field has one.
 *
 * @module
 */
import type { EventField, ViewField } from "../codegen/fields.ts";
import { taskField } from "../codegen/btf_field.ts";
import { STACK_FIELDS } from "../codegen/stacks.ts";
import { compileKeyLambda, compileLambda } from "../lambda/compile.ts";
import { type Expr, type FieldInfo, type FieldResolver, LambdaError } from "../lambda/ir.ts";
import { eventReads } from "../lambda/reads.ts";
import type { KeyNamer } from "../lambda/key_namers.ts";
import type { ProbeSite } from "../providers/provider.ts";
import type { AnyFunction, LambdaRef } from "./requests.ts";
import type { Consumer, SpanEnd } from "./site_compiler.ts";

/** How a stream's events map to record fields on one site: event path → record path and type. */
export interface View {
  entry: Entry;
  site: ProbeSite;
  /** The fields its events have, each with the record path (`field.path`) it is read from. */
  fields: ViewField[];
  resolve: FieldResolver;
  toRecord(path: readonly string[]): string[];
  /** Predicates over this view, already compiled. */
  predicates: Expr[];
}

/** A path as one string, for comparing paths. */
export const join = (p: readonly string[]): string => p.join(".");

/**
 * Finds a field of the view by its event path; a field the kernel's BTF describes (`task...`)
 * joins the view and its probe's catalog the first time something names it.
 */
export function findField(
  view: Omit<View, "resolve" | "predicates">,
  path: readonly string[],
  stringSize: number,
): EventField | undefined {
  const known = view.fields.find((f) => join(f.event) === join(path));
  if (known) return known.field;
  const found = taskField([...path], stringSize);
  if (!found) return undefined;
  if (!view.site.fields.some((f) => join(f.path) === join(path))) view.site.fields.push(found);
  view.fields.push({ event: [...path], field: found });
  return found;
}

export function resolverOf(
  view: Omit<View, "resolve" | "predicates">,
  stringSize: number,
): FieldResolver {
  const constants = new Map(view.site.constants.map((c) => [join(c.path), c.constant]));
  return (path): FieldInfo | undefined => {
    const f = findField(view, path, stringSize);
    if (f?.type) return { type: f.type };
    if (f) {
      throw new LambdaError(
        "the field is decoded in JavaScript and cannot be used in the kernel",
        `e.${path.join(".")}`,
      );
    }
    const c = constants.get(join(path));
    return c === undefined ? undefined : { constant: c };
  };
}

/** `e` with `f` applied to each direct subexpression. */
function mapChildren(e: Expr, f: (x: Expr) => Expr): Expr {
  switch (e.op) {
    case "field":
    case "strcmp":
    case "const":
      return e;
    case "neg":
    case "not":
    case "bitnot":
    case "abs":
      return { ...e, arg: f(e.arg) };
    case "cond":
      return { ...e, test: f(e.test), then: f(e.then), else: f(e.else) };
    case "min":
    case "max":
      return { ...e, args: e.args.map(f) };
    default:
      return { ...e, left: f(e.left), right: f(e.right) };
  }
}

/** `e` reading record paths instead of event paths. */
function rewrite(e: Expr, to: (p: readonly string[]) => string[]): Expr {
  if (e.op === "field") return { ...e, path: to(e.path) };
  if (e.op === "strcmp") return { ...e, field: { ...e.field, path: to(e.field.path) } };
  return mapChildren(e, (x) => rewrite(x, to));
}

/** String equality on fields that have a cheaper integer form becomes that comparison. */
function lowerStrings(view: View, e: Expr): Expr {
  if (e.op === "strcmp" && e.mode === "eq") {
    const field = view.fields.find((f) => join(f.event) === join(e.field.path))?.field;
    const target = field?.compareAs?.(e.value);
    const as = target && view.fields.find((f) => join(f.event) === join(target.path))?.field;
    if (target && as?.type) {
      return {
        op: "compare",
        operator: "==",
        left: { op: "field", path: target.path, type: as.type },
        right: { op: "const", value: target.value, type: as.type },
        type: { kind: "bool" },
      };
    }
  }
  return mapChildren(e, (x) => lowerStrings(view, x));
}

/** Compiles a lambda over a view into an expression on record paths. */
export function lambdaOn(view: View, ref: LambdaRef): Expr {
  const expr = lowerStrings(view, compileLambda(ref.fn, view.resolve, ref.params).expr);
  return rewrite(expr, view.toRecord);
}

export function keysOn(
  view: View,
  ref: LambdaRef | undefined,
): { parts: Expr[]; names: string[]; namers: (KeyNamer | undefined)[] } {
  if (!ref) return { parts: [], names: [], namers: [] };
  const k = compileKeyLambda(ref.fn, view.resolve, ref.params);
  const parts = k.parts.map((p) => rewrite(p, view.toRecord));
  return { parts, names: k.names, namers: k.namers };
}

/** The record fields a JavaScript handler needs: those it reads, or all when unsure. */
export function fieldsRead(view: View, handler: AnyFunction, stringSize: number): View["fields"] {
  const reads = eventReads(handler);
  // Stacks cost a stack walk per event and a map: only for handlers that name them.
  if (reads === "all") return view.fields.filter((f) => !STACK_FIELDS.includes(f.event[0]));
  // BTF fields join the view when read: the longest prefix of a read path that names one.
  for (const r of reads) {
    for (let n = r.length; n > 1 && !findField(view, r.slice(0, n), stringSize); n--);
  }
  const prefixOf = (a: readonly string[], b: readonly string[]) => a.every((s, i) => b[i] === s);
  return view.fields.filter((f) => reads.some((r) => prefixOf(r, f.event) || prefixOf(f.event, r)));
}

/** One site of a probe, and what was compiled into it so far. */
export interface Entry {
  site: ProbeSite;
  ends: SpanEnd[];
  consumers: Consumer[];
}
