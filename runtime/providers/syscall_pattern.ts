/**
 * Syscall probes by pattern (`syscall.on("*:entry")`, `"read*:return"`, `"{read,write}:entry"`):
 * every system call whose name the glob matches, as bpftrace's
 * `tracepoint:syscalls:sys_enter_*`.
 *
 * One program on `raw_syscalls:sys_enter` (or `sys_exit`), not one per syscall: on Linux 6.18
 * here, 360 `sys_enter_*` programs attached in 0.2 s but took 26 s to detach (each closed
 * tracepoint waits for an RCU grace period; 720 for `*:return` took 54 s), and cost
 * 300-480 ns per getppid where the one raw program costs 220 ns. The program looks the call's
 * number up in an array map filled from the architecture's syscall table: an empty entry
 * (a syscall the pattern does not match) ends it at once, else the entry holds the names
 * `syscall` and `probe` are copied from. Arguments cannot be typed per syscall, so `args`
 * are the six raw argument registers (`arg0`..`arg5`, bigint).
 *
 * Calls the per-syscall tracepoints never see are left out as they leave them out: 32-bit
 * (ia32) calls on x86_64, whose numbers are another table's, and numbers outside any table.
 *
 * @module
 */
import { call, imm, ja, jmp, ldx, R0, R1, R10, R6, R7, stx } from "../../bpf/asm/mod.ts";
import { attachTracepoint } from "../../bpf/link.ts";
import type { BpfMap } from "../../bpf/map.ts";
import type { Program } from "../../bpf/program.ts";
import { closeMatches } from "../../system/suggest.ts";
import type { ProgramBuilder } from "../codegen/builder.ts";
import {
  copyFrom,
  type EventField,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
  zeroRecord,
} from "../codegen/fields.ts";
import { fnv } from "../codegen/fnv.ts";
import { probeProgram } from "../codegen/probe_program.ts";
import { readMember } from "../codegen/struct_read.ts";
import { ArgumentError } from "../arguments.ts";
import { checkPrintable, matchPattern } from "./pattern.ts";
import type { ProbeRequest, ProbeSite, SiteContext } from "./provider.ts";
import { syscallNames } from "./syscall_numbers.ts";
import { fitReturn, type SyscallProbeOptions } from "./syscall.ts";
import { tracepointFormat } from "./tracepoint.ts";
import type { RegisterArguments } from "./functions/registers.ts";

/** The entry of a system call a pattern matched (`syscall.on("*:entry")`). */
export interface SyscallPatternEntryEvent extends EventHeader {
  /** The probe that fired, e.g. "syscall:read:entry". */
  probe: string;
  /** The system call's name, e.g. "read" (`syscall_<id>` where the table has none). */
  syscall: string;
  /** Its number on this architecture (read is 0 on x86_64). */
  id: number;
  /** Its six argument words, whatever the syscall takes (unused ones hold leftovers). */
  args: RegisterArguments;
}

/** The return of a system call a pattern matched (`syscall.on("*:return")`). */
export interface SyscallPatternReturnEvent extends EventHeader {
  /** The probe that fired, e.g. "syscall:read:return". */
  probe: string;
  /** The system call's name, e.g. "read". */
  syscall: string;
  /** Its number on this architecture. */
  id: number;
  /** The return value (negative errno on failure). */
  ret: number;
  /** Time from this thread's entry to the return; undefined when the entry was not seen. */
  latencyNs: number | undefined;
  /** The argument words as they were at entry (zero when the entry was not seen). */
  args: RegisterArguments;
}

/** Numbers the name map covers: x86_64 and aarch64 are below 470 in 6.18. */
const NUMBERS = 1024;
const ID_OFFSET = 8; // `long id` in both raw_syscalls formats
const ARGS_OFFSET = 16; // `unsigned long args[6]` at entry, `long ret` at exit
const WORDS = 6;
const STATE_MAP = "sysw_state";
const INT64 = { type: "int", size: 8, signed: true } as const;
const round8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * How the kernel marks a 32-bit call in progress, where it does in the task: x86_64's
 * TS_COMPAT in `thread_info.status` (arch/x86/include/asm/thread_info.h).
 */
const COMPAT: Readonly<Record<string, { member: string; mask: number }>> = {
  x86_64: { member: "thread_info.status", mask: 0x0002 },
};

/** Each number's name: the table's, or `syscall_<nr>` for one it does not know. */
function namesByNumber(): string[] {
  const table = syscallNames();
  return Array.from({ length: NUMBERS }, (_, nr) => table[nr] ?? `syscall_${nr}`);
}

/** Splits "GLOB:entry" into the glob and the side, with a one-line error for anything else. */
function parsePattern(spec: string): { glob: string; side: "entry" | "return" } {
  const at = spec.lastIndexOf(":");
  const side = spec.slice(at + 1);
  if (at <= 0 || (side !== "entry" && side !== "return")) {
    throw new ArgumentError(
      `Syscall probe '${spec}' is not of the form PATTERN:entry or PATTERN:return ` +
        `(e.g. *:entry, read*:return)`,
    );
  }
  return { glob: spec.slice(0, at), side };
}

/** What one pattern matched, and the map its programs look names up in. */
interface Matched {
  side: "entry" | "return";
  /** Each number's name, "" where the pattern does not match it. */
  names: string[];
  map: string;
  /** Bytes of `syscall` and of `probe` in a map value (and in the record). */
  syscallSize: number;
  probeSize: number;
}

function matched(glob: string, side: "entry" | "return"): Matched {
  const all = namesByNumber();
  const known = Object.values(syscallNames());
  const found = new Set(matchPattern(glob, {
    kind: "syscall",
    names: all,
    suggest: (literal) => closeMatches(literal, known),
  }));
  const names = all.map((n) => found.has(n) ? n : "");
  const longest = Math.max(...all.map((n) => n.length));
  return {
    side,
    names,
    map: `sysw_${side[0]}${fnv(names.join(","))}`,
    syscallSize: round8(longest + 1),
    probeSize: round8(`syscall:${"x".repeat(longest)}:return`.length + 1),
  };
}

/** Leaves the map entry of the call's number in R0, or jumps to `missing`; clobbers R1-R5. */
function lookupNames(b: ProgramBuilder, m: Matched, missing: string): void {
  const key = b.slot("syscall number");
  b.emit(ldx("DW", R1, R6, ID_OFFSET), stx("W", R10, key, R1));
  b.lookup(m.map, key, missing);
}

/** Skips calls the pattern does not match, and 32-bit ones (another table's numbers). */
function guard(m: Matched): (b: ProgramBuilder, skip: string) => void {
  const compat = COMPAT[Deno.build.arch];
  return (b, skip) => {
    lookupNames(b, m, skip);
    b.emit(ldx("B", R1, R0, 0), jmp("JEQ", R1, imm(0), skip));
    if (!compat) return;
    b.emit(call("get_current_task"));
    readMember(b, R0, "task_struct", compat.member, R1);
    b.emit(jmp("JSET", R1, imm(compat.mask), skip));
  };
}

/** A capture of the `size` bytes at `offset` in the call's map entry: a name. */
function nameFrom(m: Matched, offset: number, size: number): EventField["capture"] {
  return (b, dst) => {
    const missing = b.fresh("no_name");
    const done = b.fresh("name_done");
    lookupNames(b, m, missing);
    for (let p = 0; p < size; p += 8) {
      b.emit(ldx("DW", R1, R0, offset + p), stx("DW", R7, dst + p, R1));
    }
    b.emit(ja(done)).mark(missing);
    zeroRecord(b, dst, size);
    b.mark(done);
  };
}

/** The fields both sides have: the header, the number and the two names. */
function nameFields(m: Matched): EventField[] {
  const ids = new Map(m.names.flatMap((n, nr) => n ? [[n, nr]] : []));
  // `e.syscall === "read"` compares the number: one instruction instead of a string's bytes.
  const byName = (name: string | undefined) => {
    const nr = name === undefined ? undefined : ids.get(name);
    return nr === undefined ? undefined : { path: ["id"], value: BigInt(nr) };
  };
  const suffix = `:${m.side}`;
  return [
    ...headerFields(),
    field(["id"], INT64, copyFrom("ctx", ID_OFFSET, 8)),
    {
      ...field(["syscall"], { type: "string", size: m.syscallSize }, nameFrom(m, 0, m.syscallSize)),
      compareAs: byName,
    },
    {
      ...field(
        ["probe"],
        { type: "string", size: m.probeSize },
        nameFrom(m, m.syscallSize, m.probeSize),
      ),
      compareAs: (probe) =>
        probe.startsWith("syscall:") && probe.endsWith(suffix)
          ? byName(probe.slice("syscall:".length, -suffix.length))
          : undefined,
    },
  ];
}

/** The argument words, from the context at entry or from the saved state at return. */
function wordFields(from: "ctx" | "state"): EventField[] {
  return Array.from({ length: WORDS }, (_, i) =>
    field(
      ["args", `arg${i}`],
      { type: "pointer" },
      copyFrom(from, from === "ctx" ? ARGS_OFFSET + 8 * i : 8 + 8 * i, 8),
    ));
}

/** Writes each matched number's names into the map; the others stay zero (not matched). */
function fillNames(m: Matched): (maps: ReadonlyMap<string, BpfMap>) => void {
  return (maps) => {
    const map = maps.get(m.map)!;
    const encoder = new TextEncoder();
    m.names.forEach((name, nr) => {
      if (!name) return;
      const value = new Uint8Array(m.syscallSize + m.probeSize);
      value.set(encoder.encode(name));
      value.set(encoder.encode(`syscall:${name}:${m.side}`), m.syscallSize);
      map.update(new Uint8Array(new Uint32Array([nr]).buffer), value);
    });
  };
}

/** Sets up the one program of a syscall pattern, on `raw_syscalls`. */
function patternSite(spec: string, m: Matched, ctx: SiteContext): ProbeSite {
  ctx.map({
    name: m.map,
    type: "array",
    keySize: 4,
    valueSize: m.syscallSize + m.probeSize,
    maxEntries: NUMBERS,
  });
  const enterFormat = tracepointFormat("raw_syscalls", "sys_enter");
  const enter = (p: Program) => attachTracepoint(p, enterFormat.id, "raw_syscalls:sys_enter");
  const common = { name: `syscall:${spec}`, constants: [], prepare: fillNames(m) };
  if (m.side === "entry") {
    return {
      ...common,
      fields: [...nameFields(m), ...wordFields("ctx")],
      hook: { name: "sysw_enter", type: "tracepoint", attach: enter, guard: guard(m) },
      companions: [],
    };
  }
  const exitFormat = tracepointFormat("raw_syscalls", "sys_exit");
  const stateMap = `${STATE_MAP}_${fnv(spec)}_`;
  const site: ProbeSite = {
    ...common,
    fields: [
      field(["ret"], INT64, copyFrom("ctx", ARGS_OFFSET, 8)),
      field(["latencyNs"], { type: "latency" }, latencyFromState()),
      ...nameFields(m),
      ...wordFields("state"),
    ],
    hook: {
      name: "sysw_exit",
      type: "tracepoint",
      attach: (p) => attachTracepoint(p, exitFormat.id, "raw_syscalls:sys_exit"),
      guard: guard(m),
    },
    companions: [],
    // Saves the entry's time and words for the return, for the matched calls only.
    fit: (read) =>
      // A state map of its own: another pattern matching the same calls has its own return.
      fitReturn(site, read, wordFields("ctx").map((f) => f.path[1]), ctx, stateMap, (save) => ({
        name: "sysw_save",
        type: "tracepoint",
        instructions: probeProgram({ filter: ctx.filter, guard: guard(m), ...save }),
        attach: enter,
      })),
  };
  return site;
}

/**
 * A request for syscall pattern `spec` ("*:entry", "read*:return"), its glob matched now
 * against this architecture's syscall names: a pattern matching none is a one-line error with
 * the closest names. The `buffers` option needs typed arguments, so patterns refuse it.
 */
export function syscallPatternRequest(
  spec: string,
  options: SyscallProbeOptions = {},
): ProbeRequest {
  checkPrintable("syscall", spec);
  const { glob, side } = parsePattern(spec);
  if (Object.keys(options.buffers ?? {}).length > 0) {
    throw new ArgumentError(
      `syscall.on("${spec}") cannot read buffers: a pattern's arguments are untyped words; ` +
        `read them from one syscall's probe (e.g. read:entry)`,
    );
  }
  const m = matched(glob, side);
  const name = `syscall:${spec}`;
  return { name, key: `${name} ${m.map}`, sites: (ctx) => [patternSite(spec, m, ctx)] };
}
