/**
 * The syscall provider: the entry and return of every system call ("openat:entry",
 * "read:return"), arguments named from the `syscalls:sys_enter_*` format files.
 *
 * - Path-like `const char *` arguments are read from user memory in the kernel, as strings.
 * - Other pointers arrive as addresses (bigint); integers as numbers, with the sign and width
 *   of their C type (the format stores every argument as a 64-bit word).
 * - A return event carries `ret`, the entry-to-return time `latencyNs` measured per thread in
 *   the kernel, and the arguments saved at entry. A call that entered before tracing began has
 *   `latencyNs` undefined and zeroed arguments. The entry is traced only for what the return's
 *   consumers read: its time for `latencyNs`, its arguments for `args` and `buffers`.
 *
 * @module
 */
import { attachTracepoint } from "../../bpf/link.ts";
import {
  listTracepointsSync,
  ProbeNotFoundError,
  readFormatSync,
  type TracepointField,
} from "../../system/tracefs.ts";
import { closeMatches } from "../../system/suggest.ts";
import type { Program } from "../../bpf/program.ts";
import {
  bufferFrom,
  copyFrom,
  type EventField,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
  stringFrom,
} from "../codegen/fields.ts";
import { fnv } from "../codegen/fnv.ts";
import type { FieldDecoding } from "../codegen/record.ts";
import {
  probeProgram,
  type ProbeProgramSpec,
  stateValueSize,
  type ThreadState,
} from "../codegen/probe_program.ts";
import type { ProbeRequest, ProbeSite, ProgramPlan, SiteContext } from "./provider.ts";
import { tracepointFormat } from "./tracepoint.ts";
import type { ProbeInfo, Provider } from "./probe_info.ts";
import { ArgumentError, checkSize } from "../arguments.ts";

/** The entry of a system call. */
export interface SyscallEntryEvent<A = Record<string, unknown>> extends EventHeader {
  /** The probe, e.g. "syscall:openat:entry". */
  probe: string;
  /** The system call's name, e.g. "openat". */
  syscall: string;
  /** The arguments, named as in the syscall's format file. */
  args: A;
  /** User memory read through pointer arguments, as asked with the `buffers` option. */
  buffers: Record<string, Uint8Array>;
}

/** The return of a system call. */
export interface SyscallReturnEvent<A = Record<string, unknown>> extends EventHeader {
  /** The probe, e.g. "syscall:read:return". */
  probe: string;
  /** The system call's name, e.g. "read". */
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
    throw new ArgumentError(
      `Syscall probe '${spec}' is not of the form name:entry or name:return (e.g. openat:entry)`,
    );
  }
  return { syscall, side };
}

function formatFields(
  syscall: string,
): { fields: TracepointField[]; id: number; exitId: number } {
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

/** Most bytes a `buffers` entry reads. */
const MAX_BUFFER = 4096;
const LENGTH_ARG = /^(count|len|size|nbytes|bufsiz|buflen|length)$/;

/** The `buffers` fields: user memory behind pointer arguments, as many bytes as asked. */
function bufferFields(
  fields: TracepointField[],
  from: "ctx" | "state",
  src: (i: number) => number,
  wanted: Record<string, number>,
  probe: string,
): EventField[] {
  return Object.entries(wanted).map(([name, size]) => {
    const i = fields.findIndex((f) => f.name === name);
    if (i < 0 || argDecoding(fields[i]).type !== "pointer") {
      const pointers = fields.filter((f) => argDecoding(f).type === "pointer").map((f) => f.name);
      throw new ArgumentError(
        `${probe} has no pointer argument '${name}' to read a buffer from` +
          ` (pointer arguments: ${pointers.join(", ") || "none"})`,
      );
    }
    const lengthArg = fields.findIndex((f, j) => j > i && LENGTH_ARG.test(f.name));
    const length = from === "state"
      ? { from: "ctx" as const, offset: ARGS_OFFSET } // the return value
      : lengthArg >= 0
      ? { from, offset: src(lengthArg) }
      : undefined;
    return field(
      ["buffers", name],
      { type: "buffer", size },
      bufferFrom(from, src(i), size, length),
    );
  });
}

/** The argument fields, from the context at entry or from the saved state at return. */
function argFields(
  fields: TracepointField[],
  from: "ctx" | "state",
  stringSize: number,
): EventField[] {
  // In the state value the words follow the 8-byte entry time.
  const src = (i: number) => from === "ctx" ? ARGS_OFFSET + 8 * i : 8 + 8 * i;
  return fields.map((f, i) =>
    isStringArg(f)
      ? field(
        ["args", f.name],
        { type: "string", size: stringSize },
        stringFrom(from, src(i), "user", stringSize),
      )
      : field(["args", f.name], argDecoding(f), copyFrom(from, src(i), 8), 8)
  );
}

/**
 * Sets up a syscall entry or return probe; `owner` names the state maps of its returns, which
 * another provider's probes on the same syscall (each a return program of its own) must not
 * share.
 */
export function syscallSite(
  syscall: string,
  side: "entry" | "return",
  ctx: SiteContext,
  options: SyscallProbeOptions = {},
  owner = STATE_MAP,
): ProbeSite {
  const { fields, id, exitId } = formatFields(syscall);
  const probe = `syscall:${syscall}:${side}`;
  const from = side === "entry" ? "ctx" : "state";
  const src = (i: number) => from === "ctx" ? ARGS_OFFSET + 8 * i : 8 + 8 * i;
  const constants = [{ path: ["probe"], constant: probe }, {
    path: ["syscall"],
    constant: syscall,
  }];
  const common = [
    ...headerFields(),
    ...argFields(fields, from, ctx.stringSize),
    ...bufferFields(fields, from, src, options.buffers ?? {}, probe),
  ];
  const enter = (p: Program) => attachTracepoint(p, id, `syscalls:sys_enter_${syscall}`);
  const buffers = Object.keys(options.buffers ?? {}).length;
  const stateMap = buffers ? `${owner}_${fnv(JSON.stringify(options.buffers))}_` : owner;
  if (side === "entry") {
    return {
      name: probe,
      fields: common,
      constants,
      hook: { name: `sys_${syscall}`.slice(0, 15), type: "tracepoint", attach: enter },
      companions: [],
    };
  }
  const site: ProbeSite = {
    name: probe,
    fields: [
      field(["ret"], INT64, copyFrom("ctx", ARGS_OFFSET, 8)),
      field(["latencyNs"], { type: "latency" }, latencyFromState()),
      ...common,
    ],
    constants,
    hook: {
      name: `syr_${syscall}`.slice(0, 15),
      type: "tracepoint",
      attach: (p) => attachTracepoint(p, exitId, `syscalls:sys_exit_${syscall}`),
    },
    companions: [],
    // Every consumer of this return shares one entry program, saving what any of them reads,
    // in a state map that returns of other syscalls may share (a thread is in one call at a
    // time) but no other return of this one: the first to take the state would starve it.
    fit: (read) =>
      fitReturn(site, read, fields.map((f) => f.name), ctx, stateMap, (save) => ({
        name: `sye_${syscall}`.slice(0, 15),
        type: "tracepoint",
        instructions: probeProgram({ filter: ctx.filter, ...save }),
        attach: enter,
      })),
  };
  return site;
}

/**
 * A syscall return's hook and entry program fitted to what its consumers read (see
 * `ProbeSite.fit`): the entry program `entry` makes from what to save keeps the time where
 * `latencyNs` is read, and the argument words (at offset 16 of its context, in `sys_enter_*` as
 * in `raw_syscalls`) up to the last one read, an argument or the pointer of a buffer, in a
 * per-thread map of values that size. Where neither is read, the return has no entry program.
 * A field `site` does not have (one a provider built on it added) may read anything saved: then
 * everything is.
 */
export function fitReturn(
  site: ProbeSite,
  read: ReadonlySet<string>,
  args: readonly string[],
  ctx: SiteContext,
  stateMap: string,
  entry: (save: Pick<ProbeProgramSpec, "state" | "time">) => ProgramPlan,
): Pick<ProbeSite, "hook" | "companions"> {
  const own = new Set(site.fields.map((f) => f.path.join(".")));
  const all = [...read].some((r) => !own.has(r));
  const time = all || read.has("latencyNs");
  const words = all
    ? args.length
    : 1 + args.findLastIndex((a) => read.has(`args.${a}`) || read.has(`buffers.${a}`));
  if (!time && words === 0) return site;
  const map = ctx.map({
    name: `${stateMap}${words}`,
    type: "lru_hash",
    keySize: 8,
    valueSize: stateValueSize(words),
    maxEntries: 16384,
  });
  const save: ThreadState = { map, mode: "save", capacity: words, ctxOffset: ARGS_OFFSET, words };
  return {
    hook: { ...site.hook, state: { map, mode: "load", capacity: words } },
    companions: [entry({ state: save, time: time ? undefined : false })],
  };
}

/** A request for syscall probe `spec` ("openat:entry", "read:return"). */
export function syscallRequest(
  spec: string,
  options: SyscallProbeOptions = {},
): ProbeRequest {
  const { syscall, side } = parseSyscallProbe(spec);
  const name = `syscall:${syscall}:${side}`;
  // Checked now, so a bad size fails where it is written.
  for (const [arg, size] of Object.entries(options.buffers ?? {})) {
    checkSize(`${spec} buffers.${arg}`, size, { max: MAX_BUFFER });
  }
  return {
    name,
    key: `${name} ${JSON.stringify(options.buffers ?? {})}`,
    sites: (ctx) => [syscallSite(syscall, side, ctx, options)],
  };
}

/** The entry and return of every system call, with the arguments of its entry tracepoint. */
export const syscallProvider: Provider = {
  name: "syscall",
  list: (match) =>
    syscallNames().flatMap((syscall) => {
      const wanted = (["entry", "return"] as const).filter((side) =>
        match(`syscall:${syscall}:${side}`)
      );
      if (!wanted.length) return [];
      const args = readFormatSync("syscalls", `sys_enter_${syscall}`).fields
        .filter((f) => !f.common && f.name !== "__syscall_nr")
        .map((f) => ({ name: f.name, type: isStringArg(f) ? `${f.cType} (string)` : f.cType }));
      return wanted.map((side): ProbeInfo => ({
        name: `syscall:${syscall}:${side}`,
        provider: "syscall",
        args: side === "return"
          ? [{ name: "ret", type: "long" }, { name: "latencyNs", type: "u64" }, ...args]
          : args,
      }));
    }),
};
