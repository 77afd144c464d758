/**
 * The tracepoint provider: any static tracepoint of the kernel ("block:block_rq_issue"), its
 * arguments named and typed from the tracepoint's format file.
 *
 * The program copies the whole fixed part of the record in one helper call; `__data_loc`
 * strings are read after it. JavaScript decodes each field at its offset.
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
} from "../../bpf/tracefs.ts";
import { closeMatches } from "../../bpf/suggest.ts";
import { eventProgram, type StringRead } from "../codegen/event_program.ts";
import { type FieldDecoding, RecordLayout } from "../codegen/record.ts";
import { decodeHeader, type EventHeader, objectDecoder } from "../codegen/decode.ts";
import type { CompileContext, CompiledProbe, ProbeRequest } from "./provider.ts";

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

/** Compiles a probe on tracepoint `category:name` that streams every field. */
export function compileTracepoint(
  category: string,
  name: string,
  ctx: CompileContext,
): CompiledProbe<TracepointEvent> {
  const format = tracepointFormat(category, name);
  const probe = `tracepoint:${category}:${name}`;
  const layout = new RecordLayout();
  const payload = format.fields.filter((f) => !f.common);
  const start = Math.min(...payload.map((f) => f.offset));
  const copySize = format.size - start;
  // The fixed part lands at one 8-aligned offset; each field keeps its relative position.
  const base = layout.reserve(copySize);
  const fields = [];
  for (const f of payload) {
    const d = fixedDecoding(f);
    if (d) fields.push({ name: f.name, offset: base + f.offset - start, decoding: d });
  }
  const strings: StringRead[] = [];
  for (const f of payload.filter((f) => f.kind === "data_loc_string" && !f.relLoc)) {
    const dstOffset = layout.add(f.name, { type: "string", size: ctx.stringSize });
    strings.push({
      from: "ctx",
      srcOffset: f.offset,
      source: "data_loc",
      dstOffset,
      size: ctx.stringSize,
    });
  }
  fields.push(...layout.fields);
  const decodeArgs = objectDecoder(fields);
  return {
    name: probe,
    layout,
    programs: [{
      name: `tp_${name}`,
      type: "tracepoint",
      instructions: eventProgram({
        probeIndex: ctx.probeIndex,
        filter: ctx.filter,
        output: { ...ctx.output, recordSize: layout.recordSize },
        copies: copySize > 0
          ? [{ from: "ctx", srcOffset: start, size: copySize, dstOffset: base }]
          : [],
        strings,
      }),
      attach: (prog) => attachTracepoint(prog, format.id, `${category}:${name}`),
    }],
    decode: (view, b) => ({ ...decodeHeader(view, b), probe, args: decodeArgs(view, b) }),
  };
}

/** A request for tracepoint `spec` ("category:name"), checked when the session compiles it. */
export function tracepointRequest(spec: string): ProbeRequest<TracepointEvent> {
  const [category, name] = splitTracepoint(spec);
  return { name: `tracepoint:${spec}`, compile: (ctx) => compileTracepoint(category, name, ctx) };
}
