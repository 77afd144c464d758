/**
 * The fentry and fexit providers: the entry and exit of a kernel function through the BPF
 * trampoline, with its arguments named and typed from the kernel's BTF (`e.args.count`,
 * `e.args.file`) and, at exit, its return value (`e.retval`). Cheaper than kprobes and typed;
 * feature-probed: where the kernel refuses tracing programs (this project's 6.18 host answers
 * EPERM) a probe is a one-line error naming kprobes and tracepoints instead.
 *
 * Arguments are decoded by their BTF type: integers and enums with their size and sign,
 * pointers (structs included) as `bigint` addresses. The context of a tracing program is the
 * array of the function's arguments as u64, then, at exit, the return value.
 *
 * @module
 */
import { ldx, R0, R6, R7, stx } from "../../../bpf/asm/mod.ts";
import { Btf } from "../../../bpf/btf.ts";
import { haveFentry } from "../../../bpf/features.ts";
import { attachTracing } from "../../../bpf/link.ts";
import { AttachType } from "../../../bpf/program.ts";
import { closeMatches } from "../../../system/suggest.ts";
import { kernelFunctions, ksymAddress } from "../../../system/kallsyms.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, type EventHeader, field, headerFields } from "../../codegen/fields.ts";
import type { FieldDecoding } from "../../codegen/record.ts";
import { ArgumentError } from "../../arguments.ts";
import { type ProbeRequest, SiteUnavailableError } from "../provider.ts";
import type { ProbeArg, Provider } from "../probe_info.ts";

/** An event of an fentry probe: a call of the kernel function, its arguments typed by BTF. */
export interface FentryEvent<A = Record<string, number | bigint>> extends EventHeader {
  /** The probe, e.g. "fentry:vfs_read". */
  probe: string;
  /** The arguments by their names in the kernel's BTF. */
  args: A;
}

/** An event of an fexit probe: the return, with the arguments as they were at entry. */
export interface FexitEvent<A = Record<string, number | bigint>> extends FentryEvent<A> {
  /** The return value, typed by BTF (absent for a void function). */
  retval: number | bigint;
}

/** Most functions `probe -l` shows the arguments of (`-v`); beyond, names only. */
const ARGUMENTS_LISTED = 200;

/** Most arguments a tracing program sees (the trampoline's limit on 6.1). */
const MAX_ARGS = 6;

/** How a value of BTF type `id` is decoded; pointers and anything else 8 bytes wide. */
function decodingOf(btf: Btf, id: number): { decoding: FieldDecoding; c: string } {
  const t = btf.resolve(id);
  const c = btf.typeName(id);
  if (t.kind === "int" || t.kind === "enum") {
    const size = t.size as 1 | 2 | 4 | 8;
    if (t.kind === "int" && t.bool) return { decoding: { type: "int", size, signed: false }, c };
    if (size === 1 || size === 2 || size === 4 || size === 8) {
      return { decoding: { type: "int", size, signed: t.signed }, c };
    }
  }
  return { decoding: { type: "pointer" }, c };
}

/** The kernel function `func`'s parameters as BTF has them; a one-line error when unknown. */
function signature(
  kind: string,
  func: string,
): { id: number; params: Array<{ name: string; type: number }>; ret: number } {
  const btf = Btf.vmlinux();
  const f = btf.find(func, "func");
  if (!f || f.kind !== "func") {
    if (ksymAddress(func) !== undefined) {
      throw new ArgumentError(
        `${kind}: kernel function '${func}' has no BTF description, so the trampoline cannot ` +
          `trace it; use kprobe.on("${func}")`,
      );
    }
    const near = closeMatches(func, kernelFunctions(), 10)
      .filter((n) => btf.find(n, "func") !== undefined).slice(0, 3);
    throw new ArgumentError(
      `${kind}: the kernel's BTF has no function '${func}'` +
        (near.length ? `; did you mean ${near.join(", ")}?` : ""),
    );
  }
  const proto = btf.type(f.proto);
  if (proto.kind !== "func_proto") throw new ArgumentError(`${kind}: '${func}' has no prototype`);
  if (proto.params.length > MAX_ARGS) {
    throw new ArgumentError(
      `${kind}: '${func}' has ${proto.params.length} arguments; tracing programs see at most ` +
        `${MAX_ARGS}: use kprobe.on("${func}") instead`,
    );
  }
  return {
    id: f.id,
    params: proto.params.map((p, i) => ({ name: p.name || `arg${i}`, type: p.type })),
    ret: proto.ret,
  };
}

/** The field of the u64 at context slot `slot`, decoded as `decoding`. */
function slotField(path: string[], slot: number, decoding: FieldDecoding): EventField {
  return field(path, decoding, (b: ProgramBuilder, dst: number) => {
    b.emit(ldx("DW", R0, R6, 8 * slot), stx("DW", R7, dst, R0));
  }, 8);
}

/** A request for fentry or fexit on kernel function `func`. */
export function fentryRequest(kind: "fentry" | "fexit", func: string): ProbeRequest {
  if (!/^[A-Za-z_]\w*$/.test(func)) {
    throw new ArgumentError(`${kind} '${func}' is not a kernel function name (e.g. vfs_read)`);
  }
  const name = `${kind}:${func}`;
  const exit = kind === "fexit";
  return {
    name,
    key: name,
    sites: () => {
      if (!haveFentry()) {
        throw new SiteUnavailableError(
          name,
          "the kernel refuses tracing programs (no BPF trampoline, or locked down); use " +
            `kprobe.on("${func}") where the kernel has kprobes, or a tracepoint (see probe -l)`,
        );
      }
      const sig = signature(kind, func);
      const btf = Btf.vmlinux();
      const args = sig.params.map((p, i) =>
        slotField(["args", p.name], i, decodingOf(btf, p.type).decoding)
      );
      const ret = exit && btf.resolve(sig.ret).kind !== "void"
        ? [slotField(["retval"], sig.params.length, decodingOf(btf, sig.ret).decoding)]
        : [];
      return [{
        name,
        fields: [...headerFields(), ...args, ...ret],
        constants: [{ path: ["probe"], constant: name }],
        hook: {
          name: `${exit ? "fx" : "fe"}_${func}`.slice(0, 15),
          type: "tracing",
          expectedAttachType: exit ? AttachType.trace_fexit : AttachType.trace_fentry,
          attachBtfId: sig.id,
          attach: (prog) => attachTracing(prog, func, exit),
        },
        companions: [],
      }];
    },
  };
}

function lister(kind: "fentry" | "fexit"): Provider["list"] {
  return (match) => {
    if (!haveFentry()) return [];
    const btf = Btf.vmlinux();
    const matched = kernelFunctions().filter((f) => match(`${kind}:${f}`));
    // BTF finds a function by a scan of every type: arguments only for a narrow pattern.
    if (matched.length > ARGUMENTS_LISTED) {
      return matched.map((f) => ({ name: `${kind}:${f}`, provider: kind, args: [] }));
    }
    return matched.flatMap((f) => {
      let sig;
      try {
        sig = signature(kind, f);
      } catch {
        return [];
      }
      const args: ProbeArg[] = sig.params.map((p) => ({
        name: `args.${p.name}`,
        type: decodingOf(btf, p.type).c,
      }));
      if (kind === "fexit") args.push({ name: "retval", type: btf.typeName(sig.ret) });
      return [{ name: `${kind}:${f}`, provider: kind, args }];
    });
  };
}

/** Kernel function entries through the BPF trampoline, arguments typed by BTF. */
export const fentryProvider: Provider = { name: "fentry", list: lister("fentry") };

/** Kernel function exits through the BPF trampoline, with the return value. */
export const fexitProvider: Provider = { name: "fexit", list: lister("fexit") };
