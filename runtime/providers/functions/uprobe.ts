/**
 * The uprobe and uretprobe providers: the entry and return of a function in an executable or
 * a shared library, in every process that runs it (the session's process filter narrows it).
 *
 * A probe is named `TARGET:SYMBOL` or `TARGET:SYMBOL+OFFSET`: TARGET is a file path
 * ("/usr/bin/bash") or a library's short name ("libc", "c", "libssl.so.3"), found through the
 * dynamic linker's cache (`ldconfig -p`). The symbol's file offset comes from the ELF symbol
 * tables, so PIE executables and shared libraries need no load address.
 *
 * @module
 */
import { requireUprobes } from "../../../bpf/features.ts";
import { attachUprobe } from "../../../bpf/link.ts";
import { NotSupportedError } from "../../../bpf/errors.ts";
import { functionSymbols, resolveLibrary, resolveSymbol } from "../../../system/elf.ts";
import { type EventHeader, headerFields } from "../../codegen/fields.ts";
import { ArgumentError } from "../../arguments.ts";
import type { ProbeRequest, ProbeSite } from "../provider.ts";
import { SiteUnavailableError } from "../provider.ts";
import type { Provider } from "../probe_info.ts";
import {
  argumentFields,
  ARGUMENTS,
  argumentStrings,
  type RegisterArguments,
  returnField,
} from "./registers.ts";

/** An event of a uprobe: a call of the function. */
export interface UprobeEvent extends EventHeader, RegisterArguments {
  /** The probe, e.g. "uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc". */
  probe: string;
  /** The strings `options.strings` asked for: `str0` is the one `arg0` points to. */
  [str: `str${number}`]: string;
}

/** An event of a uretprobe: a return from the function. */
export interface UretprobeEvent extends EventHeader {
  /** The probe, e.g. "uretprobe:/usr/bin/bash:readline". */
  probe: string;
  /**
   * The integer or pointer return value, as the raw 64-bit register (unsigned: a -1 is
   * 2n ** 64n - 1n; `BigInt.asIntN(64, e.retval)` gives the signed value).
   */
  retval: bigint;
}

/** A probe spec split: the file to probe, the function and the byte offset into it. */
export interface UprobeTarget {
  path: string;
  symbol: string;
  offset: bigint;
}

/** Splits and resolves "TARGET:SYMBOL[+OFFSET]"; one-line errors for what is wrong. */
export function resolveUprobe(spec: string): UprobeTarget {
  const colon = spec.lastIndexOf(":");
  const match = /^([A-Za-z_.$@][\w.$@]*)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(
    spec.slice(colon + 1),
  );
  if (colon <= 0 || !match) {
    throw new ArgumentError(
      `uprobe '${spec}' is not TARGET:SYMBOL or TARGET:SYMBOL+OFFSET ` +
        `(e.g. /usr/bin/bash:readline, libc:malloc)`,
    );
  }
  const path = resolveLibrary(spec.slice(0, colon));
  const symbol = match[1];
  const offset = resolveSymbol(path, symbol) + BigInt(match[2] ?? 0);
  return { path, symbol, offset };
}

function site(kind: "uprobe" | "uretprobe", spec: string, target: UprobeTarget): ProbeSite {
  const probe = `${kind}:${target.path}:${spec.slice(spec.lastIndexOf(":") + 1)}`;
  const ret = kind === "uretprobe";
  return {
    name: probe,
    fields: [...headerFields(), ...ret ? [returnField()] : argumentFields()],
    constants: [{ path: ["probe"], constant: probe }],
    hook: {
      name: `${ret ? "uret" : "u"}_${target.symbol}`.slice(0, 15),
      type: "kprobe",
      attach: (prog) => attachUprobe(prog, target.path, target.offset, ret),
    },
    companions: [],
  };
}

/** Options of a uprobe. */
export interface UprobeOptions {
  /**
   * Arguments that point to NUL-terminated strings in the process's memory, to read when the
   * probe fires: `[0]` gives `e.str0`, the string `arg0` points to.
   */
  strings?: number[];
}

/** A request for a uprobe or uretprobe; the file and symbol are checked now. */
export function uprobeRequest(
  kind: "uprobe" | "uretprobe",
  spec: string,
  options: UprobeOptions = {},
): ProbeRequest {
  const strings = [...new Set(options.strings ?? [])];
  if (strings.some((i) => !Number.isInteger(i) || i < 0 || i >= ARGUMENTS)) {
    throw new ArgumentError(`strings: argument indexes go from 0 to ${ARGUMENTS - 1}`);
  }
  if (strings.length && kind === "uretprobe") {
    throw new ArgumentError("strings: a uretprobe has no arguments, only retval");
  }
  const target = resolveUprobe(spec);
  const name = `${kind}:${target.path}:${spec.slice(spec.lastIndexOf(":") + 1)}`;
  return {
    name,
    key: `${name} ${strings.join(",")}`,
    sites: (ctx) => {
      try {
        requireUprobes();
      } catch (e) {
        if (e instanceof NotSupportedError) throw new SiteUnavailableError(name, e.message);
        throw e;
      }
      const s = site(kind, spec, target);
      return [{ ...s, fields: [...s.fields, ...argumentStrings(strings, ctx.stringSize)] }];
    },
  };
}

/**
 * Lists the functions of the file a glob names exactly ("uprobe:/usr/bin/bash:read*",
 * "uprobe:libc:*"); a glob without a file lists nothing (every file on the system is too many).
 */
function lister(kind: "uprobe" | "uretprobe"): Provider["list"] {
  return (match, glob) => {
    const m = new RegExp(`^${kind}:([^*?]+):[^:]*$`).exec(glob ?? "");
    if (!m) return [];
    let path: string;
    try {
      path = resolveLibrary(m[1]);
    } catch {
      return [];
    }
    const args = kind === "uprobe"
      ? argumentFields().map((f) => ({ name: f.path[0], type: "u64" }))
      : [{ name: "retval", type: "u64" }];
    return functionSymbols(path)
      .map((s) => `${kind}:${m[1]}:${s.name}`)
      .filter(match)
      .map((name) => ({ name, provider: kind, args }));
  };
}

/** Function entries in executables and shared libraries. */
export const uprobeProvider: Provider = { name: "uprobe", list: lister("uprobe") };

/** Function returns in executables and shared libraries. */
export const uretprobeProvider: Provider = { name: "uretprobe", list: lister("uretprobe") };
