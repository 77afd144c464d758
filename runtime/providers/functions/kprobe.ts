/**
 * The kprobe and kretprobe providers: the entry and return of a kernel function, with its
 * first six arguments as `arg0`..`arg5` and its return value as `retval` (raw registers).
 * Kprobes are feature-probed: on a kernel without them (no kprobe PMU, CONFIG_KPROBES unset,
 * as on this project's 6.18 host) a probe is a one-line error naming the kernel option and the
 * tracepoints closest to the function.
 *
 * @module
 */
import { haveKprobes } from "../../../bpf/features.ts";
import { attachKprobe } from "../../../bpf/link.ts";
import { kernelFunctions, ksymAddress } from "../../../system/kallsyms.ts";
import { closeMatches } from "../../../system/suggest.ts";
import { listTracepointsSync } from "../../../system/tracefs.ts";
import { type EventHeader, headerFields } from "../../codegen/fields.ts";
import { ArgumentError } from "../../arguments.ts";
import { type ProbeRequest, SiteUnavailableError } from "../provider.ts";
import type { Provider } from "../probe_info.ts";
import { argumentFields, type RegisterArguments, returnField } from "./registers.ts";

/** An event of a kprobe: a call of the kernel function. */
export interface KprobeEvent extends EventHeader, RegisterArguments {
  /** The probe, e.g. "kprobe:vfs_read". */
  probe: string;
}

/** An event of a kretprobe: a return from the kernel function. */
export interface KretprobeEvent extends EventHeader {
  /** The probe, e.g. "kretprobe:vfs_read". */
  probe: string;
  /** The return value, as the raw 64-bit register (`BigInt.asIntN(64, e.retval)`: signed). */
  retval: bigint;
}

/** Why a kernel without kprobes cannot probe `func`, and the tracepoints to use instead. */
function noKprobes(kind: string, func: string): SiteUnavailableError {
  const near = closeMatches(func, listTracepointsSync().map((t) => `${t.category}:${t.name}`));
  const instead = near.length
    ? `use a tracepoint instead (closest: ${near.join(", ")}; see probe -l)`
    : "use a tracepoint instead (see probe -l)";
  return new SiteUnavailableError(
    `${kind}:${func}`,
    `the kernel has no kprobes (CONFIG_KPROBES is not set); ${instead}`,
  );
}

/** A request for a kprobe or kretprobe on kernel function `func`. */
export function kprobeRequest(kind: "kprobe" | "kretprobe", func: string): ProbeRequest {
  if (!/^[A-Za-z_][\w.]*$/.test(func)) {
    throw new ArgumentError(`${kind} '${func}' is not a kernel function name (e.g. vfs_read)`);
  }
  const name = `${kind}:${func}`;
  const ret = kind === "kretprobe";
  return {
    name,
    key: name,
    sites: () => {
      if (!haveKprobes()) throw noKprobes(kind, func);
      if (ksymAddress(func) === undefined) {
        const near = closeMatches(func, kernelFunctions());
        throw new ArgumentError(
          `Unknown kernel function '${func}'${
            near.length ? `; did you mean ${near.join(", ")}?` : ""
          }`,
        );
      }
      return [{
        name,
        fields: [...headerFields(), ...ret ? [returnField()] : argumentFields()],
        constants: [{ path: ["probe"], constant: name }],
        hook: {
          name: `${ret ? "kr" : "k"}_${func}`.slice(0, 15),
          type: "kprobe",
          attach: (prog) => attachKprobe(prog, func, ret),
        },
        companions: [],
      }];
    },
  };
}

function lister(kind: "kprobe" | "kretprobe"): Provider["list"] {
  return (match) => {
    if (!haveKprobes()) return [];
    const args = kind === "kprobe"
      ? argumentFields().map((f) => ({ name: f.path[0], type: "u64" }))
      : [{ name: "retval", type: "u64" }];
    return kernelFunctions().map((f) => `${kind}:${f}`).filter(match)
      .map((name) => ({ name, provider: kind, args }));
  };
}

/** Kernel function entries (where the kernel has kprobes). */
export const kprobeProvider: Provider = { name: "kprobe", list: lister("kprobe") };

/** Kernel function returns (where the kernel has kprobes). */
export const kretprobeProvider: Provider = { name: "kretprobe", list: lister("kretprobe") };
