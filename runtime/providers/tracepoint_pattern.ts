/**
 * Tracepoints by pattern (`tracepoint("block:*")`, `"sched:sched_process_*"`): one program on
 * each tracepoint the glob matches, as bpftrace's `tracepoint:block:*`.
 *
 * Every event has the header, `probe` naming the tracepoint that fired (a string in the kernel
 * too, so `count((e) => e.probe)` counts per tracepoint there), and under `args` the fields
 * every match has with the same name and type; a field only some have is not there.
 *
 * Each match is a program and a perf event, and the kernel takes about 75 ms to close each
 * (Linux 6.18 here: 26 `sched:*` tracepoints attached in 75 ms, detached in 2 s), so a pattern
 * may match at most {@link MAX_TRACEPOINT_MATCHES}.
 *
 * @module
 */
import { listTracepointsSync } from "../../system/tracefs.ts";
import { hasGlob } from "../../system/glob.ts";
import { closeMatches } from "../../system/suggest.ts";
import { type EventField, field, writeText } from "../codegen/fields.ts";
import { checkPrintable, matchPattern } from "./pattern.ts";
import type { ProbeRequest, ProbeSite, SiteContext } from "./provider.ts";
import { splitTracepoint, tracepointSite } from "./tracepoint.ts";

/** Most tracepoints one pattern attaches. */
export const MAX_TRACEPOINT_MATCHES = 128;

/** The tracepoints `spec` matches, as "category:name". */
function matches(spec: string): string[] {
  const all = listTracepointsSync().map((t) => `${t.category}:${t.name}`);
  const [category, name] = spec.split(":");
  const categories = [...new Set(all.map((t) => t.slice(0, t.indexOf(":"))))];
  const why = "each is a program, and the kernel takes about 75 ms to detach each" +
    (category === "syscalls" ? `; every syscall is one program with syscall.on("*:entry")` : "");
  return matchPattern(spec, {
    kind: "tracepoint",
    names: all,
    max: { count: MAX_TRACEPOINT_MATCHES, why },
    // A misspelled category ("blok:*") is suggested as the pattern in the closest categories.
    suggest: (literal) =>
      !hasGlob(category) && !categories.includes(category)
        ? closeMatches(category, categories).map((c) => `${c}:${name}`)
        : closeMatches(literal, all),
  });
}

/** A field's identity across tracepoints: where a handler reads it and how it decodes. */
const identity = (f: EventField) => `${f.path.join(".")} ${JSON.stringify(f.decoding)}`;

/** The sites of `spec`'s matches, each with the `args` every match has and its `probe`. */
function patternSites(spec: string, ctx: SiteContext): ProbeSite[] {
  const sites = matches(spec).map((t) => tracepointSite(...splitTracepoint(t), ctx));
  const args = (s: ProbeSite) => s.fields.filter((f) => f.path[0] === "args");
  const shared = sites.map((s) => new Set(args(s).map(identity))).reduce((a, b) =>
    new Set([...a].filter((id) => b.has(id)))
  );
  const size = Math.ceil((Math.max(...sites.map((s) => s.name.length)) + 1) / 8) * 8;
  return sites.map((s) => ({
    ...s,
    fields: [
      ...s.fields.filter((f) => f.path[0] !== "args" || shared.has(identity(f))),
      field(["probe"], { type: "string", size }, (b, dst) => writeText(b, dst, s.name, size)),
    ],
    // `probe` differs per site, so it is a field of the record rather than a constant.
    constants: [],
  }));
}

/**
 * A request for tracepoint pattern `spec` ("block:*"), matched when the session sets it up:
 * a pattern matching none is a one-line error with the closest names, one matching more than
 * {@link MAX_TRACEPOINT_MATCHES} one saying so.
 */
export function tracepointPatternRequest(spec: string): ProbeRequest {
  checkPrintable("tracepoint", spec);
  splitTracepoint(spec);
  return {
    name: `tracepoint:${spec}`,
    key: `tracepoint:${spec}`,
    sites: (ctx) => patternSites(spec, ctx),
  };
}
