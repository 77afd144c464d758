/**
 * What JavaScript handlers read, checked against the fields their events have. A path that no
 * field answers (`e.args.filenme`) would show only as `undefined`, or a TypeError, on every
 * event; it is said once instead, before anything loads, with the fields named like it.
 *
 * A read is answered when a field or constant of any event the handler gets (on any probe it
 * was given to, any site of them) is its prefix or lies under it, or when it names what every
 * object has (`e.constructor`). Handlers whose reads cannot be told are not checked.
 *
 * @module
 */
import { taskFieldSuggestions } from "../codegen/btf_field.ts";
import { eventName, eventReads } from "../lambda/reads.ts";
import { closeMatches } from "../../system/suggest.ts";
import type { AnyFunction } from "./requests.ts";
import type { View } from "./views.ts";

/** A handler reads a property that the events of its probe do not have. */
export class UnknownFieldError extends TypeError {
  /** The probe (or probes, comma-separated) the handler was given to, as the script named them. */
  readonly probe: string;
  /** The path it reads, as it wrote it: `e.args.filenme`. */
  readonly path: string;
  /** Paths close to it that its events have, best first (may be empty): `args.filename`. */
  readonly suggestions: string[];
  /** `hint`: what to read instead, when no name is close. */
  constructor(probe: string, path: string, suggestions: string[], hint: string) {
    super(
      `The handler of ${probe} reads ${path}, which its events do not have; ` +
        (suggestions.length ? `did you mean ${suggestions.join(", ")}?` : hint),
    );
    this.name = "UnknownFieldError";
    this.probe = probe;
    this.path = path;
    this.suggestions = suggestions;
  }
}

/** A stream a handler consumes: the probe as named and the views of its events. */
export interface HandledStream {
  handler: AnyFunction;
  probe: string;
  views: readonly View[];
}

/**
 * Throws an {@link UnknownFieldError} for the first path a handler reads that none of its
 * streams' events have. Call it once the views hold every field reads made join them (BTF).
 */
export function checkHandlerReads(streams: readonly HandledStream[]): void {
  const byHandler = new Map<AnyFunction, HandledStream[]>();
  for (const s of streams) byHandler.set(s.handler, [...byHandler.get(s.handler) ?? [], s]);
  for (const [handler, its] of byHandler) {
    // An optional probe this kernel lacks has fields no one knows: nothing to check against.
    if (its.some((s) => s.views.length === 0)) continue;
    const reads = eventReads(handler);
    if (reads === "all") continue;
    const shape = shapeOf(its.flatMap((s) => s.views));
    for (const path of reads) {
      const at = unknownAt(shape, path);
      if (at >= 0) throw unknownField(handler, its, shape, path, at);
    }
  }
}

/** The error for a handler's read `path`, which nothing answers from its name `at` on. */
function unknownField(
  handler: AnyFunction,
  streams: readonly HandledStream[],
  shape: Shape,
  path: readonly string[],
  at: number,
): UnknownFieldError {
  const name = eventName(handler);
  const written = (p: readonly string[]) => (name === undefined ? p : [name, ...p]).join(".");
  const probes = [...new Set(streams.map((s) => s.probe))].join(", ");
  const dotted = (paths: readonly string[][]) => paths.slice(0, 3).map((p) => p.join("."));
  if (path[0] === "task") {
    return new UnknownFieldError(
      probes,
      written(path),
      dotted(taskFieldSuggestions(path)),
      "name a member of the kernel's struct task_struct that holds a number or text",
    );
  }
  const known = [...nodeAt(shape, path.slice(0, at)).keys()].sort().join(", ");
  const hint = at === 0 ? `its events have ${known}` : `${written(path.slice(0, at))} has ${known}`;
  return new UnknownFieldError(probes, written(path), dotted(corrections(shape, path)), hint);
}

/** The names events have, each to what is under it: `null` for a field, whose value it is. */
type Shape = Map<string, Shape | null>;

/** The shape of the events of these views: their fields and constants. */
function shapeOf(views: readonly View[]): Shape {
  const shape: Shape = new Map();
  const paths = views.flatMap((v) => [
    ...v.fields.map((f) => f.event),
    ...v.site.constants.map((c) => c.path),
  ]);
  for (const path of paths) {
    let node: Shape | null = shape;
    for (const [i, name] of path.entries()) {
      if (node === null) break; // a field on one site with more under it on another
      if (i === path.length - 1) node.set(name, null);
      else if (!node.has(name)) node.set(name, new Map());
      node = node.get(name)!;
    }
  }
  return shape;
}

/** Where `path` leaves the shape: the index of the first name nothing answers, else -1. */
function unknownAt(shape: Shape, path: readonly string[]): number {
  let node: Shape | null = shape;
  for (const [i, name] of path.entries()) {
    // Under a field are its value's properties (`e.comm.length`): JavaScript's to say.
    if (node === null) return -1;
    if (!node.has(name)) return name in Object.prototype ? -1 : i;
    node = node.get(name)!;
  }
  return -1;
}

/** The names under `prefix`, a path that {@link unknownAt} walked through. */
function nodeAt(shape: Shape, prefix: readonly string[]): Shape {
  return prefix.reduce((node, name) => node.get(name)!, shape);
}

/**
 * `path` with each name nothing answers replaced by a close one, best first: whole paths where
 * every name can be mended, else the path up to the name that could not. A name may be one of
 * a level below written a level too high (`e.filename` for `e.args.filename`): taken when it
 * is that very name, or when no name beside it is close.
 */
function corrections(shape: Shape, path: readonly string[]): string[][] {
  const at = unknownAt(shape, path);
  if (at < 0) return [[...path]];
  const node = nodeAt(shape, path.slice(0, at));
  const beside = closeMatches(path[at], node.keys()).map((name) => [name]);
  const below = [...node].flatMap(([outer, inner]) =>
    inner ? closeMatches(path[at], inner.keys()).map((name) => [outer, name]) : []
  );
  // The very name a level below is what was meant, not a name like it beside.
  const exact = below.filter(([, name]) => name === path[at]);
  return (exact.length ? exact : beside.length ? beside : below).flatMap((names) => {
    const mended = [...path.slice(0, at), ...names, ...path.slice(at + 1)];
    const further = corrections(shape, mended);
    return further.length ? further : [mended.slice(0, at + names.length)];
  });
}
