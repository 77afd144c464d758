/**
 * Every probe this kernel offers, with its arguments' names and C types (like `bpftrace -lv`),
 * as data for the CLI and for tools.
 *
 * @module
 */
import { pathExists } from "../system/files.ts";
import { listTracepointsSync, readFormatSync, tracefsRoot } from "../system/tracefs.ts";
import type { EventField } from "./codegen/fields.ts";
import { ioArgs } from "./providers/io/io.ts";
import { isStringArg } from "./providers/syscall.ts";

/** One argument of a probe. */
export interface ProbeArg {
  name: string;
  /** The C type as the kernel declares it ("const char *", "unsigned int"). */
  type: string;
}

/** One probe and what its events carry. */
export interface ProbeInfo {
  /** Full name: "syscall:openat:entry", "tracepoint:block:block_rq_issue". */
  name: string;
  provider: "syscall" | "tracepoint" | "io";
  args: ProbeArg[];
  /** What this kernel lacks for the probe, in words. */
  notes?: string[];
}

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
  const match = globMatcher(glob.includes(":") ? glob : `*${glob}*`);
  const out: ProbeInfo[] = [];
  for (const { category, name } of listTracepointsSync()) {
    const tp = `tracepoint:${category}:${name}`;
    const entry = category === "syscalls" && name.startsWith("sys_enter_");
    const syscall = entry ? name.slice("sys_enter_".length) : undefined;
    const candidates = [tp];
    if (syscall) candidates.push(`syscall:${syscall}:entry`, `syscall:${syscall}:return`);
    const wanted = candidates.filter(match);
    if (wanted.length === 0) continue;
    const fields = readFormatSync(category, name).fields.filter((f) => !f.common);
    for (const full of wanted) {
      if (full === tp) {
        out.push({
          name: full,
          provider: "tracepoint",
          args: fields.map((f) => ({
            name: f.name,
            type: f.dataLoc
              ? `__data_loc ${f.cType}`
              : f.arrayLength !== undefined
              ? `${f.cType}[${f.arrayLength}]`
              : f.cType,
          })),
        });
        continue;
      }
      const args = fields.filter((f) => f.name !== "__syscall_nr").map((f) => ({
        name: f.name,
        type: isStringArg(f) ? `${f.cType} (string)` : f.cType,
      }));
      if (full.endsWith(":return")) {
        args.unshift({ name: "ret", type: "long" }, { name: "latencyNs", type: "u64" });
      }
      out.push({ name: full, provider: "syscall", args });
    }
  }
  out.push(...ioProbes().filter((p) => match(p.name)));
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The type a listing shows for a field. */
function typeOf(f: EventField): string {
  if (f.transform) return "string";
  switch (f.decoding.type) {
    case "int":
      return `${f.decoding.signed ? "s" : "u"}${f.decoding.size * 8}`;
    case "latency":
      return "u64";
    case "pointer":
      return "pointer";
    case "string":
      return "string";
    default:
      return "bytes";
  }
}

/** The io provider's probes; their arguments are the same on every kernel. */
function ioProbes(): ProbeInfo[] {
  const own = (fields: EventField[]) =>
    fields.filter((f) =>
      !f.path[0].startsWith("$") &&
      !["pid", "tid", "comm", "cpu", "timestampNs"].includes(f.path[0])
    )
      .map((f) => ({ name: f.path.join("."), type: typeOf(f) }));
  const transfer = ioArgs();
  const nfs = pathExists(`${tracefsRoot()}/events/nfs`)
    ? "NFS: this kernel has nfs tracepoints, but tsprobe does not trace NFS I/O yet"
    : "NFS: unavailable (this kernel has no nfs tracepoints; is the nfs module loaded?)";
  return [
    { name: "io:start", provider: "io", args: own(transfer), notes: [nfs] },
    {
      name: "io:done",
      provider: "io",
      args: [{ name: "latencyNs", type: "u64" }, ...own(transfer)],
      notes: [nfs],
    },
    { name: "io:wait-start", provider: "io", args: [] },
    { name: "io:wait-done", provider: "io", args: [{ name: "waitNs", type: "u64" }] },
  ];
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
