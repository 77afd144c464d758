/**
 * Aggregations keyed by stacks as folded stacks, the input format of flame graph tools
 * (Brendan Gregg's flamegraph.pl, speedscope, inferno): one line per key, its frames from the
 * root to the leaf separated by `;`, a space, and the count. Key parts that are not stacks
 * (a process name) come first, as the roots of their stacks.
 *
 * @module
 */
import { printable } from "../printable.ts";
import { type AggregationData, type KeyPart, stackFrames } from "./data.ts";

/** One folded stack: its frames root first, and its count. */
export interface FoldedStack {
  /** Frames from the root (a process name, `main`) to the leaf. */
  frames: string[];
  /** Samples (or the sum) of this stack. */
  count: number;
}

/** A frame as folded text: control characters escaped, no `;` (the separator). */
function frameText(frame: string): string {
  return printable(frame).replaceAll(";", ":");
}

/** The frames of a key, root first: other parts, then each stack from its root to its leaf. */
function framesOf(key: KeyPart[]): string[] {
  return key.flatMap((part) => {
    const frames = stackFrames(part);
    return frames ? [...frames].reverse() : [String(part)];
  }).map(frameText);
}

/** The rows of a count or sum aggregation as folded stacks (histograms have no one count). */
export function foldStacks(data: AggregationData): FoldedStack[] {
  return data.rows.flatMap((r) => {
    const v = r.value;
    if (v.kind !== "count" && v.kind !== "sum") return [];
    return [{ frames: framesOf(r.key), count: v.value }];
  });
}

/** Folded stacks as text: a line per stack, `root;...;leaf COUNT`. */
export function foldedText(stacks: readonly FoldedStack[]): string {
  return stacks.map((s) => `${s.frames.join(";") || "[empty]"} ${s.count}`).join("\n");
}

/**
 * The `top` largest folded stacks as bpftrace prints stacks: the first frame (a process name)
 * on its own line, then the frames leaf first, indented, then the count.
 */
export function formatStacks(stacks: readonly FoldedStack[], top: number): string {
  return [...stacks].sort((a, b) => b.count - a.count).slice(0, top).map((s) => {
    const [first, ...frames] = s.frames;
    return [first, ...[...frames].reverse().map((f) => `    ${f}`), `  ${s.count}`, ""].join("\n");
  }).join("\n");
}
