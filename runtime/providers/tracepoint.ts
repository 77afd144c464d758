/**
 * The tracepoint provider: any static tracepoint of the kernel ("block:block_rq_issue"), its
 * arguments named and typed from the tracepoint's format file.
 *
 * Fixed-size fields are copied from the tracepoint's record, `__data_loc` strings read through
 * their location word; only the fields something reads are captured.
 *
 * @module
 */
import { attachTracepoint } from "../../bpf/link.ts";
import {
  listTracepointsSync,
  ProbeNotFoundError,
  readFormatSync,
  type TracepointField,
  type TracepointFormat,
} from "../../system/tracefs.ts";
import { closeMatches } from "../../system/suggest.ts";
import {
  copyFrom,
  type EventField,
  type EventHeader,
  field,
  headerFields,
  stringFrom,
} from "../codegen/fields.ts";
import type { FieldDecoding } from "../codegen/record.ts";
import type { ProbeRequest, ProbeSite, SiteContext } from "./provider.ts";
import type { ProbeArg, Provider } from "./probe_info.ts";

/** An event of a tracepoint probe. */
export interface TracepointEvent<A = Record<string, unknown>> extends EventHeader {
  /** The probe, e.g. "tracepoint:block:block_rq_issue". */
  probe: string;
  /** The tracepoint's own fields, named as in its format file. */
  args: A;
}

/** How a fixed-size format field is decoded; undefined for data-loc fields. */
export function fixedDecoding(f: TracepointField): FieldDecoding | undefined {
  const int = (size: number) => size === 1 || size === 2 || size === 4 || size === 8;
  switch (f.kind) {
    case "int":
      return int(f.size)
        ? { type: "int", size: f.size as 1 | 2 | 4 | 8, signed: f.signed }
        : { type: "bytes", size: f.size };
    case "pointer":
      return { type: "pointer" };
    case "string":
      return { type: "string", size: f.size };
    case "array": {
      const length = f.arrayLength ?? 0;
      const elem = length ? f.size / length : 0;
      return int(elem)
        ? { type: "int_array", elemSize: elem as 1 | 2 | 4 | 8, signed: f.signed, length }
        : { type: "bytes", size: f.size };
    }
    default:
      return undefined;
  }
}

/** Splits "category:name", with a one-line error for anything else. */
export function splitTracepoint(spec: string): [string, string] {
  const parts = spec.split(":");
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new TypeError(
      `Tracepoint '${spec}' is not of the form category:name (e.g. block:block_rq_issue)`,
    );
  }
  return [parts[0], parts[1]];
}

/** Reads a tracepoint's format; a misspelled name becomes a one-line error with close matches. */
export function tracepointFormat(category: string, name: string): TracepointFormat {
  try {
    return readFormatSync(category, name);
  } catch (e) {
    if (!(e instanceof ProbeNotFoundError)) throw e;
    const all = listTracepointsSync().map((t) => `${t.category}:${t.name}`);
    throw new ProbeNotFoundError(
      "tracepoint",
      `${category}:${name}`,
      closeMatches(`${category}:${name}`, all),
    );
  }
}

/**
 * The format of the first of `names` in `category` that this kernel has, for tracepoints
 * renamed between kernel versions; undefined when it has none of them.
 */
export function firstTracepointFormat(
  category: string,
  names: readonly string[],
): TracepointFormat | undefined {
  for (const name of names) {
    try {
      return readFormatSync(category, name);
    } catch (e) {
      if (!(e instanceof ProbeNotFoundError)) throw e;
    }
  }
  return undefined;
}

/** The fields of a tracepoint's events: the header, then its format's own fields as `args`. */
export function tracepointFields(format: TracepointFormat, stringSize: number): EventField[] {
  const args: EventField[] = [];
  for (const f of format.fields.filter((f) => !f.common)) {
    const d = fixedDecoding(f);
    if (d) args.push(field(["args", f.name], d, copyFrom("ctx", f.offset, f.size), f.size));
    else if (f.kind === "data_loc_string" && !f.relLoc) {
      const decoding = { type: "string", size: stringSize } as const;
      args.push(
        field(["args", f.name], decoding, stringFrom("ctx", f.offset, "data_loc", stringSize)),
      );
    }
  }
  return [...headerFields(), ...args];
}

/** Sets up a probe on tracepoint `category:name`. */
export function tracepointSite(category: string, name: string, ctx: SiteContext): ProbeSite {
  const format = tracepointFormat(category, name);
  const probe = `tracepoint:${category}:${name}`;
  return {
    name: probe,
    fields: tracepointFields(format, ctx.stringSize),
    constants: [{ path: ["probe"], constant: probe }],
    hook: {
      name: `tp_${name}`.slice(0, 15),
      type: "tracepoint",
      attach: (prog) => attachTracepoint(prog, format.id, `${category}:${name}`),
    },
    companions: [],
  };
}

/** A request for tracepoint `spec` ("category:name"), checked when the session sets it up. */
export function tracepointRequest(spec: string): ProbeRequest {
  const [category, name] = splitTracepoint(spec);
  return {
    name: `tracepoint:${spec}`,
    key: `tracepoint:${spec}`,
    sites: (ctx) => [tracepointSite(category, name, ctx)],
  };
}

/** A format field as `probe -lv` shows it: its C type, with the array length or `__data_loc`. */
export function declaredArg(f: TracepointField): ProbeArg {
  const type = f.dataLoc
    ? `__data_loc ${f.cType}`
    : f.arrayLength !== undefined
    ? `${f.cType}[${f.arrayLength}]`
    : f.cType;
  return { name: f.name, type };
}

/** Every tracepoint of the kernel, as "tracepoint:CATEGORY:NAME". */
export const tracepointProvider: Provider = {
  name: "tracepoint",
  list: (match) =>
    listTracepointsSync().flatMap(({ category, name }) => {
      const full = `tracepoint:${category}:${name}`;
      if (!match(full)) return [];
      const args = readFormatSync(category, name).fields.filter((f) => !f.common).map(declaredArg);
      return [{ name: full, provider: "tracepoint", args }];
    }),
};
