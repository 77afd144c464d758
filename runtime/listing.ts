/**
 * Every probe this kernel offers, with its arguments' names and C types (like `bpftrace -lv`),
 * as data for the CLI and for tools.
 *
 * @module
 */
import { listAll } from "./providers/registry.ts";
import type { ProbeInfo } from "./providers/probe_info.ts";
import { globMatcher } from "../system/glob.ts";

export type { ProbeArg, ProbeInfo } from "./providers/probe_info.ts";
/** Globs ("syscall:open*", "*rq_issue") as tests on full probe names. */
export { globMatcher } from "../system/glob.ts";

/**
 * Lists probes whose full name matches `glob` (default: all). Arguments are read from the
 * format files only for the probes that match, so a narrow glob is fast.
 */
export function listProbes(glob = "*"): ProbeInfo[] {
  const full = glob.includes(":") ? glob : `*${glob}*`;
  return listAll(globMatcher(full), full);
}

/** The fields every probe's events have, listed once at the top of a verbose listing. */
const HEADER_ARGS = "u32 pid, u32 tid, string comm, u32 cpu, u64 timestampNs, stack kstack, " +
  "stack ustack, task_struct task";

/**
 * Formats a listing the way `bpftrace -lv` does: the probe, then indented arguments. What the
 * kernel lacks for a probe is a numbered note after its name, each note printed once at the
 * end; a verbose listing starts with the fields every event has.
 */
export function formatListing(probes: ProbeInfo[], verbose: boolean): string {
  const notes: string[] = [];
  const marks = (p: ProbeInfo) =>
    (p.notes ?? []).map((n) => {
      if (!notes.includes(n)) notes.push(n);
      return `[${notes.indexOf(n) + 1}]`;
    }).join("");
  const lines = probes.map((p) => {
    const mark = marks(p);
    const name = mark ? `${p.name}  ${mark}` : p.name;
    return verbose ? [name, ...p.args.map((a) => `    ${a.type} ${a.name}`)].join("\n") : name;
  });
  const header = verbose && probes.length ? [`(every event also has: ${HEADER_ARGS})`] : [];
  return [...header, ...lines, ...notes.map((n, i) => `[${i + 1}] ${n}`)].join("\n");
}
