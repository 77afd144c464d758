/**
 * The syscall provider: the entry and return of every system call ("openat:entry",
 * "read:return"), arguments named from the `syscalls:sys_enter_*` format files.
 *
 * - Path-like `const char *` arguments are read from user memory in the kernel, as strings.
 * - Other pointers arrive as addresses (bigint); integers as numbers, with the sign and width
 *   of their C type (the format stores every argument as a 64-bit word).
 * - A return event carries `ret`, the entry-to-return time `latencyNs` measured per thread in
 *   the kernel, and the arguments saved at entry. A call that entered before tracing began has
 *   `latencyNs` undefined and zeroed arguments.
 *
 * @module
 */
import { attachTracepoint } from "../../bpf/link.ts";
import {
  listTracepointsSync,
  ProbeNotFoundError,
  type TracepointField,
} from "../../bpf/tracefs.ts";
import { closeMatches } from "../../bpf/suggest.ts";
import {
  type BufferRead,
  type Copy,
  eventProgram,
  type EventProgramSpec,
  stateValueSize,
  type StringRead,
} from "../codegen/event_program.ts";
import { type FieldDecoding, type RecordField, RecordLayout } from "../codegen/record.ts";
import { decodeField, decodeHeader, type EventHeader, objectDecoder } from "../codegen/decode.ts";
import type { Program } from "../../bpf/program.ts";
import type { CompileContext, CompiledProbe, ProbeRequest } from "./provider.ts";
import { tracepointFormat } from "./tracepoint.ts";

/** The entry of a system call. */
export interface SyscallEntryEvent<A = Record<string, unknown>> extends EventHeader {
  /** The probe, e.g. "syscall:openat:entry". */
  probe: string;
  /** The system call's name, e.g. "openat". */
  syscall: string;
  args: A;
  /** User memory read through pointer arguments, as asked with the `buffers` option. */
  buffers: Record<string, Uint8Array>;
}

/** The return of a system call. */
export interface SyscallReturnEvent<A = Record<string, unknown>> extends EventHeader {
  probe: string;
  syscall: string;
  /** The return value (negative errno on failure). */
  ret: number;
  /** Time from this thread's entry to the return; undefined when the entry was not seen. */
  latencyNs: number | undefined;
  /** The arguments as they were at entry. */
  args: A;
  /** User memory read at return through pointer arguments (`buffers` option), `ret` bytes. */
  buffers: Record<string, Uint8Array>;
}

const ARGS_OFFSET = 16; // after common fields and __syscall_nr (with padding)
const MAX_ARGS = 6;
const STATE_MAP = "sys_state";
const INT64 = { type: "int", size: 8, signed: true } as const;

const INT32_TYPES = new Set([
  "int",
  "pid_t",
  "uid_t",
  "gid_t",
  "key_t",
  "clockid_t",
  "mqd_t",
  "qid_t",
  "rwf_t",
  "key_serial_t",
  "timer_t",
  "old_uid_t",
  "old_gid_t",
]);

/** How one 64-bit syscall argument word decodes, from its C type. */
export function argDecoding(f: TracepointField): FieldDecoding {
  const t = f.cType.replace(/\s+/g, " ").trim();
  if (t.endsWith("*")) return { type: "pointer" };
  if (INT32_TYPES.has(t)) return { type: "int", size: 4, signed: true };
  if (/^unsigned( int)?$|^u32$|^__u32$|^umode_t$|^unsigned short$/.test(t)) {
    return { type: "int", size: 4, signed: false };
  }
  const signed = !/unsigned|size_t$|^u64|^__u64|^aio_context_t/.test(t) || t === "ssize_t";
  return { type: "int", size: 8, signed };
}

/** True for a `const char *` argument that names something (a path, a name), read as a string. */
export function isStringArg(f: TracepointField): boolean {
  return /^const char \*$/.test(f.cType.replace(/\s+/g, " ").trim()) && !/buf/.test(f.name);
}

function syscallNames(): string[] {
  return listTracepointsSync()
    .filter((t) => t.category === "syscalls" && t.name.startsWith("sys_enter_"))
    .map((t) => t.name.slice("sys_enter_".length));
}

/** Splits "openat:entry" into its syscall and side, with one-line errors offering matches. */
export function parseSyscallProbe(spec: string): { syscall: string; side: "entry" | "return" } {
  const [syscall, side = "entry", extra] = spec.split(":");
  if (extra !== undefined || (side !== "entry" && side !== "return")) {
    throw new TypeError(
      `Syscall probe '${spec}' is not of the form name:entry or name:return (e.g. openat:entry)`,
    );
  }
  return { syscall, side };
}

function argFields(syscall: string): { fields: TracepointField[]; id: number; exitId: number } {
  let enter, exit;
  try {
    enter = tracepointFormat("syscalls", `sys_enter_${syscall}`);
    exit = tracepointFormat("syscalls", `sys_exit_${syscall}`);
  } catch (e) {
    if (!(e instanceof ProbeNotFoundError)) throw e;
    throw new ProbeNotFoundError("syscall", syscall, closeMatches(syscall, syscallNames()));
  }
  const fields = enter.fields.filter((f) => !f.common && f.offset >= ARGS_OFFSET);
  return { fields: fields.slice(0, MAX_ARGS), id: enter.id, exitId: exit.id };
}

/** Options of a syscall probe. */
export interface SyscallProbeOptions {
  /**
   * Pointer arguments whose user memory to read, with the most bytes to keep: `{ buf: 64 }`.
   * At entry as many bytes as a count argument after it says (`count`, `len`, `size`...), at
   * return as many as `ret` says; the bytes arrive in the event's `buffers`.
   */
  buffers?: Record<string, number>;
}

const LENGTH_ARG = /^(count|len|size|nbytes|bufsiz|buflen|length)$/;

function bufferReads(
  layout: RecordLayout,
  fields: TracepointField[],
  from: "ctx" | "state",
  src: (i: number) => number,
  wanted: Record<string, number>,
  probe: string,
) {
  const reads: BufferRead[] = [];
  const decoded: RecordField[] = [];
  for (const [name, size] of Object.entries(wanted)) {
    const i = fields.findIndex((f) => f.name === name);
    if (i < 0 || argDecoding(fields[i]).type !== "pointer") {
      const pointers = fields.filter((f) => argDecoding(f).type === "pointer").map((f) => f.name);
      throw new TypeError(
        `${probe} has no pointer argument '${name}' to read a buffer from` +
          ` (pointer arguments: ${pointers.join(", ") || "none"})`,
      );
    }
    if (!Number.isInteger(size) || size <= 0 || size > 4096) {
      throw new RangeError(`Buffer size ${size} for '${name}' must be an integer in 1..4096`);
    }
    const lengthArg = fields.findIndex((f, j) => j > i && LENGTH_ARG.test(f.name));
    const length = from === "state"
      ? { from: "ctx" as const, offset: ARGS_OFFSET } // the return value
      : lengthArg >= 0
      ? { from, offset: src(lengthArg) }
      : undefined;
    const lengthOffset = layout.reserve(4, 4);
    const dstOffset = layout.reserve(size);
    reads.push({ from, srcOffset: src(i), length, dstOffset, lengthOffset, size });
    decoded.push({ name, offset: dstOffset, decoding: { type: "buffer", size, lengthOffset } });
  }
  return { reads, decodeBuffers: objectDecoder(decoded) };
}

/** Places the argument words and strings in a record; returns copies, string reads, decoder. */
function layoutArgs(
  layout: RecordLayout,
  fields: TracepointField[],
  from: "ctx" | "state",
  stringSize: number,
  buffers: Record<string, number>,
  probe: string,
) {
  const words = layout.reserve(8 * fields.length);
  // In the state value the words follow the 8-byte entry time.
  const src = (i: number) => from === "ctx" ? ARGS_OFFSET + 8 * i : 8 + 8 * i;
  const copies: Copy[] = fields.length
    ? [{ from, srcOffset: src(0), size: 8 * fields.length, dstOffset: words }]
    : [];
  const strings: StringRead[] = [];
  const decoded = fields.map((f, i) => {
    if (!isStringArg(f)) return { name: f.name, offset: words + 8 * i, decoding: argDecoding(f) };
    const dstOffset = layout.reserve(stringSize);
    strings.push({ from, srcOffset: src(i), source: "user", dstOffset, size: stringSize });
    return { name: f.name, offset: dstOffset, decoding: { type: "string", size: stringSize } };
  });
  const { reads, decodeBuffers } = bufferReads(layout, fields, from, src, buffers, probe);
  return { copies, strings, reads, decodeArgs: objectDecoder(decoded as never), decodeBuffers };
}

/** Compiles a syscall entry or return probe. */
export function compileSyscall(
  syscall: string,
  side: "entry" | "return",
  ctx: CompileContext,
  options: SyscallProbeOptions = {},
): CompiledProbe<SyscallEntryEvent | SyscallReturnEvent> {
  const { fields, id, exitId } = argFields(syscall);
  const probe = `syscall:${syscall}:${side}`;
  const layout = new RecordLayout();
  // A return record leads with ret and latency; its arguments come from the entry's saved state.
  const ret = side === "return"
    ? { name: "ret", offset: layout.reserve(8), decoding: INT64 } as const
    : undefined;
  const latency = ret && layout.reserve(8);
  const from = side === "entry" ? "ctx" : "state";
  const args = layoutArgs(layout, fields, from, ctx.stringSize, options.buffers ?? {}, probe);
  const output = { ...ctx.output, recordSize: layout.recordSize };
  const event = (view: DataView, b: number) => ({
    ...decodeHeader(view, b),
    probe,
    syscall,
    args: args.decodeArgs(view, b),
    buffers: args.decodeBuffers(view, b) as Record<string, Uint8Array>,
  });
  const entryProgram = (name: string, spec: Omit<EventProgramSpec, "probeIndex" | "filter">) => ({
    name: `${name}_${syscall}`.slice(0, 15),
    type: "tracepoint" as const,
    instructions: eventProgram({ probeIndex: ctx.probeIndex, filter: ctx.filter, ...spec }),
    attach: (p: Program) => attachTracepoint(p, id, `syscalls:sys_enter_${syscall}`),
  });
  if (!ret || latency === undefined) {
    return {
      name: probe,
      layout,
      programs: [entryProgram("sys", {
        output,
        copies: args.copies,
        strings: args.strings,
        buffers: args.reads,
      })],
      decode: event,
    };
  }
  const stateMap = ctx.map({
    name: STATE_MAP,
    type: "lru_hash",
    keySize: 8,
    valueSize: stateValueSize(MAX_ARGS),
    maxEntries: 16384,
  });
  return {
    name: probe,
    layout,
    programs: [
      entryProgram("sye", {
        copies: [],
        strings: [],
        state: {
          map: stateMap,
          mode: "save",
          capacity: MAX_ARGS,
          ctxOffset: ARGS_OFFSET,
          words: fields.length,
        },
      }),
      {
        name: `syr_${syscall}`.slice(0, 15),
        type: "tracepoint",
        instructions: eventProgram({
          probeIndex: ctx.probeIndex,
          filter: ctx.filter,
          output,
          copies: [
            { from: "ctx", srcOffset: ARGS_OFFSET, size: 8, dstOffset: ret.offset },
            ...args.copies,
          ],
          strings: args.strings,
          buffers: args.reads,
          state: { map: stateMap, mode: "load", capacity: MAX_ARGS, latencyOffset: latency },
        }),
        attach: (p) => attachTracepoint(p, exitId, `syscalls:sys_exit_${syscall}`),
      },
    ],
    decode: (view, b) => {
      const ns = view.getBigUint64(b + latency, true);
      return {
        ...event(view, b),
        ret: decodeField(view, b, ret) as number,
        latencyNs: ns === 0xffff_ffff_ffff_ffffn ? undefined : Number(ns),
      };
    },
  };
}

/** A request for syscall probe `spec` ("openat:entry", "read:return"). */
export function syscallRequest(
  spec: string,
  options: SyscallProbeOptions = {},
): ProbeRequest<SyscallEntryEvent | SyscallReturnEvent> {
  const { syscall, side } = parseSyscallProbe(spec);
  return {
    name: `syscall:${syscall}:${side}`,
    compile: (ctx) => compileSyscall(syscall, side, ctx, options),
  };
}
