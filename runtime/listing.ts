/**
 * Every probe this kernel offers, with its arguments' names and C types (like `bpftrace -lv`),
 * as data for the CLI and for tools.
 *
 * @module
 */
import { listAll } from "./providers/registry.ts";
import type { ProbeInfo } from "./providers/probe_info.ts";

export type { ProbeArg, ProbeInfo } from "./providers/probe_info.ts";

/** Turns a glob ("syscall:open*", "*rq_issue") into a test on full probe names. */
export function globMatcher(glob: string): (name: string) => boolean {
  const re = new RegExp(
    "^" + glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
  );
  return (name) => re.test(name);
}

/**
 * Lists probes whose full name matches `glob` (default: all). Arguments are read from the
 * format files only for the probes that match, so a narrow glob is fast.
 */
export function listProbes(glob = "*"): ProbeInfo[] {
  const full = glob.includes(":") ? glob : `*${glob}*`;
  return listAll(globMatcher(full), full);
}

/**
 * Formats a listing the way `bpftrace -lv` does: the probe, then indented arguments; what the
 * kernel lacks for a probe follows its name.
 */
export function formatListing(probes: ProbeInfo[], verbose: boolean): string {
  return probes.map((p) => {
    const name = p.notes?.length ? `${p.name}  (${p.notes.join("; ")})` : p.name;
    return verbose ? [name, ...p.args.map((a) => `    ${a.type} ${a.name}`)].join("\n") : name;
  }).join("\n");
}
