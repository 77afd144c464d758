/**
 * Loading generated programs into the kernel, and turning a verifier rejection into an error a
 * person can act on: the probe, the program as assembly with the rejected instruction marked,
 * and the tail of the verifier's log.
 *
 * @module
 */
import { closeFd, cstr, libbpf } from "./ffi.ts";
import { BpfError } from "./errors.ts";
import { encode, formatProgram, type Item, link, type Linked, subprogramSlots } from "./asm/mod.ts";
import { funcInfo, loadFunctionBtf } from "./func_btf.ts";
import type { BpfMap } from "./map.ts";

/** Program types the runtime loads (`enum bpf_prog_type`). */
export const ProgramType = {
  kprobe: 2,
  tracepoint: 5,
  perf_event: 7,
  raw_tracepoint: 17,
  tracing: 26,
} as const;
export type ProgramType = keyof typeof ProgramType;

/** `enum bpf_attach_type` values: a program's expected attach type and `bpf_link_create`'s. */
export const AttachType = {
  trace_raw_tp: 23,
  trace_fentry: 24,
  trace_fexit: 25,
  perf_event: 41,
} as const;

/** Everything a program is loaded from. */
export interface ProgramSpec {
  /** Object name shown by `bpftool prog list` (at most 15 characters kept). */
  name: string;
  type: ProgramType;
  instructions: readonly Item[];
  /** Maps the instructions refer to by name. */
  maps: ReadonlyMap<string, BpfMap>;
  /** The probe this program implements, for error messages ("syscall:openat:entry"). */
  probe: string;
  license?: string;
  /** `expected_attach_type`, needed by `tracing` programs. */
  expectedAttachType?: number;
  /** BTF id of the traced function, for `tracing` programs. */
  attachBtfId?: number;
}

/** The verifier rejected a program. */
export class VerifierError extends Error {
  /** The probe the program implements ("syscall:openat:entry"). */
  readonly probe: string;
  /** The generated program as assembly, the rejected instruction marked with `>`. */
  readonly listing: string;
  /** The verifier's whole log. */
  readonly log: string;
  /** Slot of the instruction the verifier stopped at, when the log names one. */
  readonly instruction?: number;
  /** The load's errno (EACCES or EINVAL from the verifier). */
  readonly errno: number;
  /** The verifier's `log` for `probe`'s program, `listing`, rejected at instruction `at`. */
  constructor(probe: string, errno: number, listing: string, log: string, at?: number) {
    const lines = log.trimEnd().split("\n");
    const tail = lines.slice(-12).join("\n");
    super(
      `The kernel verifier rejected the program for probe '${probe}'` +
        (at !== undefined ? ` at instruction ${at}` : "") +
        `. This is a bug in the code generator: please report it with this message.\n` +
        `--- program ---\n${listing}\n--- verifier log (last lines) ---\n${tail}`,
    );
    this.name = "VerifierError";
    this.probe = probe;
    this.listing = listing;
    this.log = log;
    this.instruction = at;
    this.errno = errno;
  }
}

const LOG_SIZE = 4 << 20;

/** Finds the instruction a verifier log ends on: its last `N: (op) ...` line. */
export function rejectedInstruction(log: string): number | undefined {
  let at: number | undefined;
  for (const m of log.matchAll(/^(\d+): \([0-9a-f]{2}\)/gm)) at = Number(m[1]);
  return at;
}

/** A program loaded into the kernel; it stays there while its fd or a link holds it. */
export class Program implements Disposable {
  readonly fd: number;
  readonly name: string;
  readonly type: ProgramType;
  readonly probe: string;
  /** The program as it was loaded, for `explain` listings. */
  readonly linked: Linked;
  #closed = false;

  private constructor(fd: number, spec: ProgramSpec, linked: Linked) {
    this.fd = fd;
    this.name = spec.name;
    this.type = spec.type;
    this.probe = spec.probe;
    this.linked = linked;
  }

  /**
   * Assembles and loads a program. The first attempt runs without a log (faster); a rejection is
   * loaded again with the verifier log on, to build a {@link VerifierError}.
   */
  static load(spec: ProgramSpec): Program {
    const linked = link(spec.instructions);
    const code = encode(linked, (name) => {
      const map = spec.maps.get(name);
      if (!map) throw new Error(`Program for '${spec.probe}' refers to unknown map '${name}'`);
      return map.fd;
    });
    using functions = functionsOf(linked);
    let fd = loadRaw(spec, code, functions, 0);
    if (fd >= 0) return new Program(fd, spec, linked);
    if (fd !== -13 && fd !== -22 && fd !== -7 && fd !== -28) {
      throw new BpfError(`load program for probe '${spec.probe}'`, -fd);
    }
    const log = new Uint8Array(LOG_SIZE);
    fd = loadRaw(spec, code, functions, 1, log);
    if (fd >= 0) return new Program(fd, spec, linked); // passed with the log on: a transient refusal
    const end = log.indexOf(0);
    const text = new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end));
    if (!text.trim()) throw new BpfError(`load program for probe '${spec.probe}'`, -fd);
    const at = rejectedInstruction(text);
    throw new VerifierError(spec.probe, -fd, formatProgram(linked, at), text, at);
  }

  /** The program as assembly, in the verifier's syntax. */
  listing(): string {
    return formatProgram(this.linked);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A program's `func_info` and the BTF it refers to, when the program has subprograms. */
interface Functions extends Disposable {
  btfFd?: number;
  info?: Uint8Array<ArrayBuffer>;
}

function functionsOf(linked: Linked): Functions {
  const starts = subprogramSlots(linked);
  if (!starts.length) return { [Symbol.dispose]: () => {} };
  const btfFd = loadFunctionBtf(starts.length);
  return { btfFd, info: funcInfo(starts), [Symbol.dispose]: () => closeFd(btfFd) };
}

function pointerTo(buffer: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

function loadRaw(
  spec: ProgramSpec,
  code: Uint8Array<ArrayBuffer>,
  functions: Functions,
  logLevel: number,
  log?: Uint8Array<ArrayBuffer>,
): number {
  const opts = new Uint8Array(104);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, 104n, true); // sz
  view.setUint32(12, spec.expectedAttachType ?? 0, true);
  view.setUint32(32, spec.attachBtfId ?? 0, true);
  if (functions.info) {
    view.setUint32(16, functions.btfFd!, true); // prog_btf_fd
    view.setBigUint64(56, pointerTo(functions.info), true);
    view.setUint32(64, functions.info.length / 8, true); // func_info_cnt
    view.setUint32(68, 8, true); // func_info_rec_size
  }
  if (log) {
    view.setUint32(88, logLevel, true);
    view.setUint32(92, log.length, true);
    view.setBigUint64(96, pointerTo(log), true);
  }
  return libbpf().bpf_prog_load(
    ProgramType[spec.type],
    cstr(spec.name.slice(0, 15)),
    cstr(spec.license ?? "GPL"),
    code,
    BigInt(code.length / 8),
    opts,
  );
}
