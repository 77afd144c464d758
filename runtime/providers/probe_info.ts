/**
 * What a provider tells `probe -l` about its probes: names, the arguments a handler reads and
 * what this kernel lacks. Providers describe themselves by {@link Provider}; the registry
 * (`registry.ts`) lists them once for the DSL, the one-liner scope and listings.
 *
 * @module
 */
import type { EventField } from "../codegen/fields.ts";
import { type ProbeRequest, type SiteContext, SiteUnavailableError } from "./provider.ts";

/** One argument of a probe. */
export interface ProbeArg {
  name: string;
  /** The C type as the kernel declares it ("const char *"), or the decoded type ("u32"). */
  type: string;
}

/** One probe and what its events carry. */
export interface ProbeInfo {
  /** Full name: "syscall:openat:entry", "tracepoint:block:block_rq_issue". */
  name: string;
  /** The provider's name ("syscall"). */
  provider: string;
  args: ProbeArg[];
  /** What this kernel lacks for the probe, in words. */
  notes?: string[];
}

/** A provider: its name in scripts (`io.on(...)`) and in probe names ("io:start"). */
export interface Provider {
  name: string;
  /**
   * Its probes whose full names `match` accepts, with their arguments on this kernel. `glob`
   * is the pattern `match` tests, for providers whose probes live in a file it names
   * ("uprobe:/usr/bin/bash:*").
   */
  list(match: (name: string) => boolean, glob?: string): ProbeInfo[];
}

/** Fields every event has (`EventHeader`), left out of a probe's own arguments. */
const HEADER = new Set(["pid", "tid", "comm", "cpu", "timestampNs", "kstack", "ustack"]);

/** The type a listing shows for a decoded field. */
function typeOf(f: EventField): string {
  if (f.transform) return "string";
  switch (f.decoding.type) {
    case "int":
      return `${f.decoding.signed ? "s" : "u"}${f.decoding.size * 8}`;
    case "latency":
      return "u64";
    case "pointer":
    case "string":
      return f.decoding.type;
    default:
      return "bytes";
  }
}

/** A probe's own arguments: its fields but the header's and internal ones (`$...`). */
export function argsOf(fields: readonly EventField[]): ProbeArg[] {
  return fields.filter((f) => !f.path[0].startsWith("$") && !HEADER.has(f.path[0]))
    .map((f) => ({ name: f.path.join("."), type: typeOf(f) }));
}

/** Sets up sites for their fields only: maps and counters are named, never created. */
const LISTING: SiteContext = {
  filter: {},
  stringSize: 64,
  map: (spec) => spec.name,
  counter: () => 0,
  counters: "counters",
  scratch: "scratch",
};

/**
 * A probe as the listing shows it, from the fields of its first site as the session would set
 * it up; what the kernel lacks (a {@link SiteUnavailableError}) becomes a note.
 */
export function describeRequest(provider: string, request: ProbeRequest): ProbeInfo {
  try {
    const [site] = request.sites(LISTING);
    return { name: request.name, provider, args: argsOf(site.fields) };
  } catch (e) {
    if (!(e instanceof SiteUnavailableError)) throw e;
    return { name: request.name, provider, args: [], notes: [e.reason] };
  }
}
