/**
 * The usdt provider: statically defined probes in user programs (`sys/sdt.h`'s `STAP_PROBE`,
 * DTrace's USDT), found in an ELF file's `.note.stapsdt` notes: `usdt.on("/usr/bin/python3:
 * python:function__entry")`. Each probe location is a uprobe; a probe behind a semaphore
 * (code that runs only while someone traces it) has it incremented by the kernel while
 * attached. Arguments are decoded from the note's specs, as the compiler placed them:
 * registers (`8@%rbx`, `-4@%eax`), memory (`-4@112(%rsp)`, `8@(%rax)`) and constants (`4@$5`),
 * with their size and sign; 8-byte arguments are `bigint`s (usually pointers), smaller ones
 * numbers. `options.strings` reads the NUL-terminated strings some arguments point to.
 *
 * Only x86_64's operand syntax is decoded; an argument the decoder does not know reads as 0
 * and `probe -l` shows its spec.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  jmp,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R6,
  R7,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { NotSupportedError } from "../../../bpf/errors.ts";
import { requireUprobes } from "../../../bpf/features.ts";
import { attachUprobe } from "../../../bpf/link.ts";
import { resolveLibrary, type UsdtNote, usdtProbes } from "../../../system/elf.ts";
import { closeMatches } from "../../../system/suggest.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, type EventHeader, field, headerFields } from "../../codegen/fields.ts";
import { memberOffset } from "../../codegen/struct_read.ts";
import { ArgumentError } from "../../arguments.ts";
import { type ProbeRequest, SiteUnavailableError } from "../provider.ts";
import type { Provider } from "../probe_info.ts";

/** An event of a USDT probe: its arguments, and the strings asked for. */
export interface UsdtEvent extends EventHeader {
  /** The probe, e.g. "usdt:/usr/bin/python3.11:python:function__entry". */
  probe: string;
  /** Arguments `arg0`..`arg11` as the note declares them (8-byte ones as bigints). */
  [arg: `arg${number}`]: number | bigint;
  /** The strings `options.strings` asked for, `str0` for `arg0`. */
  [str: `str${number}`]: string;
}

/** Options of a USDT probe. */
export interface UsdtProbeOptions {
  /** Arguments that point to NUL-terminated strings to read, by index: `[0, 1]` gives `str0`. */
  strings?: number[];
}

/** x86_64 register names in operands, and the `pt_regs` member holding each. */
const REGISTERS: Record<string, string> = {};
for (
  const [member, names] of Object.entries({
    ax: ["rax", "eax", "ax", "al"],
    bx: ["rbx", "ebx", "bx", "bl"],
    cx: ["rcx", "ecx", "cx", "cl"],
    dx: ["rdx", "edx", "dx", "dl"],
    si: ["rsi", "esi", "si", "sil"],
    di: ["rdi", "edi", "di", "dil"],
    bp: ["rbp", "ebp", "bp", "bpl"],
    sp: ["rsp", "esp", "sp", "spl"],
    ip: ["rip"],
  })
) names.forEach((n) => REGISTERS[n] = member);
for (let i = 8; i <= 15; i++) {
  for (const suffix of ["", "d", "w", "b"]) REGISTERS[`r${i}${suffix}`] = `r${i}`;
}

/** One argument spec decoded: how wide and signed, and where the value is. */
export type UsdtArg =
  & { size: 1 | 2 | 4 | 8; signed: boolean }
  & (
    | { kind: "register"; member: string }
    | { kind: "memory"; member: string; offset: number }
    | { kind: "constant"; value: bigint }
    | { kind: "unknown"; spec: string }
  );

/** Decodes one argument spec ("-4@112(%rsp)"); `unknown` for what x86_64 syntax cannot say. */
export function parseUsdtArg(spec: string): UsdtArg {
  const m = /^(-?)(1|2|4|8)@(.+)$/.exec(spec);
  if (!m) return { size: 8, signed: false, kind: "unknown", spec };
  const base = { size: Number(m[2]) as 1 | 2 | 4 | 8, signed: m[1] === "-" };
  const operand = m[3];
  const reg = /^%(\w+)$/.exec(operand);
  if (reg && REGISTERS[reg[1]]) return { ...base, kind: "register", member: REGISTERS[reg[1]] };
  const mem = /^(-?\d*)\(%(\w+)\)$/.exec(operand);
  if (mem && REGISTERS[mem[2]] && mem[2] !== "rip") {
    return { ...base, kind: "memory", member: REGISTERS[mem[2]], offset: Number(mem[1] || 0) };
  }
  const constant = /^\$(-?\d+)$/.exec(operand);
  if (constant) return { ...base, kind: "constant", value: BigInt(constant[1]) };
  return { ...base, kind: "unknown", spec };
}

/** Leaves the argument in R0, widened to 64 bits by its sign (R6: the probe's `pt_regs`). */
function emitArg(b: ProgramBuilder, arg: UsdtArg): void {
  switch (arg.kind) {
    case "constant":
      b.emit(mov64(R0, imm(Number(BigInt.asIntN(32, arg.value)))));
      return;
    case "unknown":
      b.emit(mov64(R0, imm(0)));
      return;
    case "register":
      b.emit(ldx("DW", R0, R6, memberOffset("pt_regs", arg.member)));
      break;
    case "memory": {
      const slot = b.slot("usdt argument");
      b.emit(st("DW", R10, slot, 0), ldx("DW", R3, R6, memberOffset("pt_regs", arg.member)));
      b.emit(alu64("ADD", R3, imm(arg.offset)), mov64(R1, R10), alu64("ADD", R1, imm(slot)));
      b.emit(mov64(R2, imm(arg.size)), call("probe_read_user"), ldx("DW", R0, R10, slot));
      break;
    }
  }
  if (arg.size < 8) {
    const shift = 64 - 8 * arg.size;
    b.emit(alu64("LSH", R0, imm(shift)), alu64(arg.signed ? "ARSH" : "RSH", R0, imm(shift)));
  }
}

/** The fields of a probe's arguments (`argN`) and the strings asked for (`strN`). */
function argumentFields(specs: string, strings: readonly number[], stringSize: number) {
  const args = specs.trim() ? specs.trim().split(/\s+/).map(parseUsdtArg) : [];
  const out: EventField[] = args.map((a, i) =>
    field(
      [`arg${i}`],
      a.size === 8 ? { type: "pointer" } : { type: "int", size: 8, signed: a.signed },
      (b, dst) => {
        emitArg(b, a);
        b.emit(stx("DW", R7, dst, R0));
      },
    )
  );
  for (const i of strings) {
    if (!args[i]) {
      throw new ArgumentError(`strings: the probe has no argument ${i} (it has ${args.length})`);
    }
    out.push(field([`str${i}`], { type: "string", size: stringSize }, (b, dst) => {
      for (let p = 0; p < stringSize; p += 8) b.emit(st("DW", R7, dst + p, 0));
      const done = b.fresh("no_string");
      emitArg(b, args[i]);
      b.emit(jmp("JEQ", R0, imm(0), done), mov64(R3, R0), mov64(R1, R7));
      b.emit(alu64("ADD", R1, imm(dst)), mov64(R2, imm(stringSize)), call("probe_read_user_str"));
      b.mark(done);
    }));
  }
  return out;
}

/** The file a TARGET names: a path, or a library's short name. */
function targetPath(target: string): string {
  return resolveLibrary(target);
}

/** Splits "TARGET:PROVIDER:NAME" and finds the probe's locations in the file. */
function resolveUsdt(spec: string): { path: string; notes: UsdtNote[]; probe: string } {
  const parts = spec.split(":");
  if (parts.length < 3 || parts.slice(-2).some((p) => !/^[\w.$]+$/.test(p))) {
    throw new ArgumentError(
      `usdt '${spec}' is not TARGET:PROVIDER:NAME (e.g. /usr/bin/python3:python:function__entry)`,
    );
  }
  const [provider, name] = parts.slice(-2);
  const path = targetPath(parts.slice(0, -2).join(":"));
  const all = usdtProbes(path);
  const notes = all.filter((n) => n.provider === provider && n.name === name);
  if (notes.length === 0) {
    const near = closeMatches(`${provider}:${name}`, all.map((n) => `${n.provider}:${n.name}`));
    throw new ArgumentError(
      `${path} has no USDT probe ${provider}:${name}` +
        (all.length === 0
          ? " (it has no .note.stapsdt: none at all)"
          : near.length
          ? `; did you mean ${[...new Set(near)].join(", ")}?`
          : ""),
    );
  }
  return { path, notes, probe: `usdt:${path}:${provider}:${name}` };
}

/** A request for USDT probe `spec`; the file and probe are checked now. */
export function usdtRequest(spec: string, options: UsdtProbeOptions = {}): ProbeRequest {
  const { path, notes, probe } = resolveUsdt(spec);
  const strings = [...new Set(options.strings ?? [])];
  return {
    name: probe,
    key: `${probe} ${strings.join(",")}`,
    sites: (ctx) => {
      try {
        requireUprobes();
      } catch (e) {
        if (e instanceof NotSupportedError) throw new SiteUnavailableError(probe, e.message);
        throw e;
      }
      // One site per location: a probe the compiler placed in several spots fires from each.
      return notes.map((note, i) => ({
        name: probe,
        fields: [...headerFields(), ...argumentFields(note.args, strings, ctx.stringSize)],
        constants: [{ path: ["probe"], constant: probe }],
        hook: {
          name: `usdt_${note.name}`.slice(0, 12) + `_${i}`,
          type: "kprobe" as const,
          attach: (prog) => attachUprobe(prog, path, note.offset, false, -1, note.semaphore),
        },
        companions: [],
      }));
    },
  };
}

/** The USDT probes of the file a glob names ("usdt:/usr/bin/python3:*"), with their specs. */
export const usdtProvider: Provider = {
  name: "usdt",
  list: (match, glob) => {
    const m = /^usdt:([^*?]+?):[^:]*:[^:]*$/.exec(glob ?? "") ??
      /^usdt:([^*?]+?):\*$/.exec(glob ?? "");
    if (!m) return [];
    let path: string;
    try {
      path = targetPath(m[1]);
    } catch {
      return [];
    }
    const seen = new Set<string>();
    return usdtProbes(path).flatMap((n) => {
      const name = `usdt:${m[1]}:${n.provider}:${n.name}`;
      if (seen.has(name) || !match(name)) return [];
      seen.add(name);
      const args = n.args.trim() ? n.args.trim().split(/\s+/) : [];
      return [{
        name,
        provider: "usdt",
        args: args.map((spec, i) => ({ name: `arg${i}`, type: spec })),
        notes: n.semaphore ? ["behind a semaphore"] : undefined,
      }];
    });
  },
};
