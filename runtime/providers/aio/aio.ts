/**
 * The aio provider: Linux native AIO traced like Tracee, and timed per request.
 *
 * - `io_setup`, `io_destroy`, `io_submit`, `io_cancel`, `io_getevents`, `io_pgetevents`, each
 *   `:entry` and `:return`, with Tracee's argument names (`ctx_id`, `ctx_idp`, `min_nr`, `nr`,
 *   `events`, `timeout`, `usig`, `iocbpp`, `iocb`, `result`, `nr_events`); with
 *   `{ decode: true }` also the contents behind them (see `decoded.ts`).
 * - `reap`: one event per request, submit to reap (see `lifecycle.ts`).
 * - `uring`: one event per io_uring request, from `io_uring_submit_req` to
 *   `io_uring_complete`: until the kernel posts the completion, which differs from libaio's
 *   "until reaped".
 *
 * @module
 */
import { registerKeyNamer } from "../../lambda/key_namers.ts";
import { imm, jmp, ldx, R0, R10, R6, stx } from "../../../bpf/asm/mod.ts";
import { Btf } from "../../../bpf/btf.ts";
import { attachTracepoint } from "../../../bpf/link.ts";
import type { Program } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import {
  copyFrom,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
} from "../../codegen/fields.ts";
import { probeProgram, stateValueSize, type ThreadState } from "../../codegen/probe_program.ts";
import {
  type ProbeRequest,
  type ProbeSite,
  type SiteContext,
  SiteUnavailableError,
} from "../provider.ts";
import { describeRequest, type Provider } from "../probe_info.ts";
import { parseSyscallProbe, syscallSite } from "../syscall.ts";
import { firstTracepointFormat } from "../tracepoint.ts";
import type { Iocb, IoEvent, SigSet } from "./abi.ts";
import { eventsField, iocbsField, timeoutField, usigField } from "./decoded.ts";
import { reapSites } from "./lifecycle.ts";

/** The AIO syscalls, which `aio.on("NAME:entry")` and `aio.on("NAME:return")` trace. */
export const AIO_SYSCALLS = [
  "io_setup",
  "io_destroy",
  "io_submit",
  "io_cancel",
  "io_getevents",
  "io_pgetevents",
] as const;

/** Tracee's names for arguments the kernel's formats name otherwise. */
const TRACEE_NAMES: Readonly<Record<string, Record<string, string>>> = {
  io_setup: { ctxp: "ctx_idp" },
  io_destroy: { ctx: "ctx_id" },
};

/** One request, submitted with io_submit and reaped with io_getevents or io_pgetevents. */
export interface AioReapEvent extends EventHeader {
  /** The probe. */
  probe: "aio:reap";
  /** io_submit's return to the reaping call's return (as fio's clat), in nanoseconds. */
  latencyNs: number;
  /** The request's `aio_data`. */
  data: bigint;
  /** The iocb's user address (the request's identity). */
  iocb: bigint;
  /** The result: bytes transferred, or a negative errno. */
  res: number;
  /** A second result, 0 for reads and writes. */
  res2: number;
  /** `IOCB_CMD_*` number. */
  opcode: number;
  /** Its name ("PREAD"). */
  op: string;
  /** The request's file descriptor. */
  fd: number;
  /** The fd's file, from /proc when the event is decoded ("" when gone). */
  path: string;
  /** Bytes asked for. */
  bytes: number;
  /** The file offset. */
  offset: number;
}

/** One io_uring request, from submission until the kernel posted its completion. */
export interface UringEvent extends EventHeader {
  /** The probe. */
  probe: "aio:uring";
  /** From the request's submission to its completion's posting, in nanoseconds. */
  latencyNs: number;
  /** `IORING_OP_*` number. */
  opcode: number;
  /** Its name as the kernel spells it ("READ"; see {@link uringOpName}). */
  op: string;
  /** The completion's result: bytes transferred, or a negative errno. */
  res: number;
  /** The request's `user_data`. */
  user_data: bigint;
  /** The ring's kernel address (`struct io_ring_ctx *`): which ring. */
  ctx: bigint;
}

/** Contents decoded with `{ decode: true }`, by syscall. */
export interface AioDecoded {
  /** io_submit: the iocbs (at return: those submitted). */
  iocbs?: Iocb[];
  /** io_getevents, io_pgetevents return: the io_events reaped. */
  events?: IoEvent[];
  /** io_getevents, io_pgetevents: the timeout in seconds, null for none. */
  timeout?: number | null;
  /** io_pgetevents: the signal set, null for none. */
  usig?: SigSet | null;
}

/** Options of an AIO syscall probe. */
export interface AioProbeOptions {
  /** Copy and decode what the pointer arguments point to. */
  decode?: boolean;
  /**
   * Run without this probe, with a one-line note, where the kernel lacks it (io_uring
   * tracepoints for "uring"), instead of failing the session.
   */
  optional?: boolean;
}

/**
 * An AIO syscall probe, with Tracee's argument names and decoded contents when asked (at a
 * return, read through the arguments in the task's saved registers).
 */
function syscallProbeSite(spec: string, ctx: SiteContext, decode: boolean): ProbeSite {
  const { syscall, side } = parseSyscallProbe(spec);
  // Decoded or not, each is a return program of its own, which needs a state map of its own.
  const site = syscallSite(syscall, side, ctx, {}, decode ? "aio_dstate" : "aio_state");
  const names = TRACEE_NAMES[syscall] ?? {};
  const kernelName = new Map(Object.entries(names).map(([k, t]) => [`args.${t}`, `args.${k}`]));
  const fields = site.fields.map((f) =>
    f.path[0] === "args" && names[f.path[1]] ? { ...f, path: ["args", names[f.path[1]]] } : f
  );
  const from = side === "entry" ? "ctx" : "regs";
  if (decode && syscall === "io_submit") fields.push(iocbsField(from));
  if (decode && (syscall === "io_getevents" || syscall === "io_pgetevents")) {
    fields.push(timeoutField(from));
    if (side === "return") fields.push(eventsField());
  }
  if (decode && syscall === "io_pgetevents") fields.push(usigField(from));
  // The syscall's own fields read, by their own names; the decoded ones read the registers.
  const own = new Set(site.fields.map((f) => f.path.join(".")));
  const fit = site.fit;
  return {
    ...site,
    name: `aio:${syscall}:${side}`,
    fields,
    fit: fit &&
      ((read) =>
        fit(new Set([...read].map((r) => kernelName.get(r) ?? r).filter((r) => own.has(r))))),
  };
}

/** io_uring requests: the submit saves time and opcode by request, the completion times it. */
function uringSite(ctx: SiteContext): ProbeSite {
  // io_uring_submit_sqe became io_uring_submit_req in 6.4, with the fields read here unchanged.
  const submit = firstTracepointFormat("io_uring", ["io_uring_submit_req", "io_uring_submit_sqe"]);
  const complete = firstTracepointFormat("io_uring", ["io_uring_complete"]);
  if (!submit || !complete) {
    throw new SiteUnavailableError(
      "aio:uring",
      "io_uring timing needs the io_uring tracepoints io_uring_submit_req (or " +
        "io_uring_submit_sqe) and io_uring_complete (Linux 5.5+, CONFIG_IO_URING); trace " +
        "io_uring_enter with syscall.on() instead",
    );
  }
  const at = (f: typeof submit, name: string) => {
    const found = f.fields.find((x) => x.name === name);
    if (found) return found.offset;
    throw new SiteUnavailableError(
      "aio:uring",
      `io_uring:${f.name} has no field '${name}' here (older kernels); trace io_uring_enter ` +
        "with syscall.on() instead",
    );
  };
  const map = ctx.map({
    name: "aio_uring",
    type: "hash",
    keySize: 8,
    valueSize: stateValueSize(1),
    maxEntries: 65536,
  });
  const keyOf = (f: typeof submit) => (b: ProgramBuilder) =>
    b.emit(ldx("DW", R0, R6, at(f, "req")));
  // Auxiliary completions (req 0) belong to no request.
  const guard = (f: typeof submit) => (b: ProgramBuilder, skip: string) =>
    b.emit(ldx("DW", R0, R6, at(f, "req")), jmp("JEQ", R0, imm(0), skip));
  const save: ThreadState = {
    map,
    mode: "save",
    capacity: 1,
    words: 1,
    key: keyOf(submit),
    fill: (b, slot) => b.emit(ldx("B", R0, R6, at(submit, "opcode")), stx("DW", R10, slot, R0)),
  };
  const load: ThreadState = {
    map,
    mode: "load",
    capacity: 1,
    key: keyOf(complete),
    required: true,
  };
  const u = (size: 1 | 4 | 8, signed = false) => ({ type: "int", size, signed }) as const;
  return {
    name: "aio:uring",
    fields: [
      ...headerFields(),
      field(["latencyNs"], { type: "latency" }, latencyFromState()),
      field(["opcode"], u(8), copyFrom("state", 8, 8)),
      { ...field(["op"], u(8), copyFrom("state", 8, 8)), type: undefined, transform: uringOpName },
      field(["res"], u(4, true), copyFrom("ctx", at(complete, "res"), 4), 4),
      field(["user_data"], { type: "pointer" }, copyFrom("ctx", at(complete, "user_data"), 8)),
      field(["ctx"], { type: "pointer" }, copyFrom("ctx", at(complete, "ctx"), 8)),
    ],
    constants: [{ path: ["probe"], constant: "aio:uring" }],
    hook: {
      name: "aio_uring_done",
      type: "tracepoint",
      attach: (p: Program) => attachTracepoint(p, complete.id, `io_uring:${complete.name}`),
      guard: guard(complete),
      state: load,
    },
    companions: [{
      name: "aio_uring_sub",
      type: "tracepoint",
      instructions: probeProgram({ filter: ctx.filter, guard: guard(submit), state: save }),
      attach: (p: Program) => attachTracepoint(p, submit.id, `io_uring:${submit.name}`),
    }],
  };
}

let uringOpNames: Map<number, string> | undefined;

/** `IORING_OP_*` by value, from the running kernel's BTF (`enum io_uring_op`). */
function uringOps(): Map<number, string> {
  if (uringOpNames) return uringOpNames;
  const names = uringOpNames = new Map<number, string>();
  try {
    const e = Btf.vmlinux().find("io_uring_op", "enum");
    if (e?.kind === "enum") {
      for (const v of e.values) {
        if (v.name !== "IORING_OP_LAST") {
          names.set(Number(v.value), v.name.slice("IORING_OP_".length));
        }
      }
    }
  } catch {
    // No BTF: numbers only.
  }
  return names;
}

/**
 * The name of io_uring opcode `op` as the running kernel spells it (`IORING_OP_READ` is
 * "READ"), from its BTF; "OP_N" for one it does not know.
 *
 * @example Names
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { uringOpName } from "./aio.ts";
 * equal(uringOpName(22), "READ");
 * equal(uringOpName(999), "OP_999");
 * ```
 */
export function uringOpName(op: unknown): string {
  return uringOps().get(Number(op)) ?? `OP_${op}`;
}

// `count((e) => uringOpName(e.opcode))`: the opcode in the kernel, its name when shown.
registerKeyNamer("uringOpName", { name: uringOpName, part: "opcode" });

/** A request for aio probe `probe`: "reap", "uring", or "io_submit:entry" and the like. */
export function aioRequest(probe: string, options: AioProbeOptions = {}): ProbeRequest {
  const name = `aio:${probe}`;
  const sites = (ctx: SiteContext): ProbeSite[] =>
    probe === "reap"
      ? reapSites(ctx)
      : probe === "uring"
      ? [uringSite(ctx)]
      : [syscallProbeSite(probe, ctx, options.decode ?? false)];
  // Checked now, so a misspelled probe fails where it is written.
  if (probe !== "reap" && probe !== "uring") {
    const { syscall } = parseSyscallProbe(probe);
    if (!(AIO_SYSCALLS as readonly string[]).includes(syscall)) {
      throw new TypeError(
        `Unknown aio probe '${probe}': use reap, uring, or ${AIO_SYSCALLS.join(", ")} ` +
          `with :entry or :return`,
      );
    }
  }
  return {
    name,
    key: `${name} ${options.decode ? "decoded" : ""}`,
    optional: options.optional,
    sites,
  };
}

/** Requests timed from submit to reap, io_uring requests, and the AIO syscalls. */
export const aioProvider: Provider = {
  name: "aio",
  list: (match) =>
    ["reap", "uring", ...AIO_SYSCALLS.flatMap((s) => [`${s}:entry`, `${s}:return`])]
      .filter((p) => match(`aio:${p}`))
      .map((p) => describeRequest("aio", aioRequest(p))),
};
