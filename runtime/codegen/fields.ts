/**
 * Event fields as the compiler sees them: what a provider offers for one probe, each with its
 * type for kernel lambdas, its decoding for JavaScript, and the code that captures it into the
 * record. The compiler captures only the fields something reads.
 *
 * While a probe's program runs, R6 holds the context, R7 the record (a per-CPU scratch map
 * value), R8 the thread's saved state (0 when none) and R9 the probe time.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  ja,
  jmp,
  ldImm64,
  ldx,
  mov64,
  R0,
  R1,
  R2,
  R3,
  R6,
  R7,
  R8,
  R9,
  type Reg,
  type Size,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import type { ValueType } from "../lambda/ir.ts";
import type { ProgramBuilder } from "./builder.ts";
import { stackFields } from "./stacks.ts";
import { decodingSize, type FieldDecoding } from "./record.ts";

/** A field the kernel captures into the record. */
export interface EventField {
  /** Where a handler reads it: `["args", "fd"]`. */
  path: string[];
  /** Its type in kernel lambdas; undefined when only JavaScript can use it (byte buffers). */
  type?: ValueType;
  decoding: FieldDecoding;
  /** Record bytes it takes. */
  size: number;
  /** Emits code writing the value at R7 + `dst`; may clobber R0-R5. */
  capture(b: ProgramBuilder, dst: number): void;
  /** Differs per element of a repeated event (see `HookPlan.repeat`); else captured once. */
  perElement?: boolean;
  /** Bytes of another field that one capture fills with several (never captured alone). */
  partOf?: { path: string[]; offset: number };
  /** Turns the decoded value into what JavaScript sees (a device number into its name). */
  transform?: (decoded: unknown) => unknown;
  /**
   * Called with values seen while the session runs (aggregation keys, about once a second),
   * so that what `transform` needs later is kept: a process's mappings, before it exits.
   */
  retain?: (decoded: unknown) => void;
  /**
   * A cheaper equal test for a string field: `field === value` as another (integer) field
   * equal to a number, e.g. a device name as its device number; undefined to compare text.
   */
  compareAs?: (value: string) => { path: string[]; value: bigint } | undefined;
}

/**
 * A field as one stream's events name it: a handler reads it at `event`, the record holds it
 * at `field.path` (the two differ for a span's own fields: `latencyNs` is `$span0.latencyNs`).
 * Every pass after the provider carries the provider's {@link EventField} itself, annotated.
 */
export interface ViewField {
  event: string[];
  field: EventField;
}

/** A field placed in the record by the pass that lays it out: `offset` bytes from its start. */
export interface PlacedField {
  field: EventField;
  offset: number;
}

/** A field whose value is known when the probe is compiled (the probe's name, say). */
export interface ConstantField {
  path: string[];
  constant: string | number | boolean;
}

/** The kernel type of a decoded integer, pointer or string; undefined for other decodings. */
export function decodingType(d: FieldDecoding): ValueType | undefined {
  switch (d.type) {
    case "int":
      return { kind: "int", signed: d.signed, bigint: false };
    case "latency":
      return { kind: "int", signed: true, bigint: false, optional: true };
    case "pointer":
      return { kind: "int", signed: false, bigint: true };
    case "string":
      return { kind: "string", size: d.size };
    default:
      return undefined;
  }
}

/** A field with the type its decoding implies. */
export function field(
  path: string[],
  decoding: FieldDecoding,
  capture: EventField["capture"],
  size = decodingSize(decoding),
): EventField {
  return { path, type: decodingType(decoding), decoding, size, capture };
}

const SIZE_OF: Record<number, Size> = { 1: "B", 2: "H", 4: "W", 8: "DW" };

/**
 * Copies `size` bytes at `base + off` to the record. Aligned words load directly (tracepoint
 * contexts allow it from offset 8 on, map values always); anything else goes through
 * `probe_read_kernel`.
 */
function emitCopy(b: ProgramBuilder, base: Reg, off: number, size: number, dst: number): void {
  const direct = SIZE_OF[size] !== undefined && off % size === 0 && (base !== R6 || off >= 8);
  if (direct) {
    b.emit(ldx(SIZE_OF[size], R0, base, off), stx(SIZE_OF[size], R7, dst, R0));
    return;
  }
  b.emit(
    mov64(R1, R7),
    alu64("ADD", R1, imm(dst)),
    mov64(R2, imm(size)),
    mov64(R3, base),
    alu64("ADD", R3, imm(off)),
    call("probe_read_kernel"),
  );
}

/** Zeroes `size` bytes of the record at `dst`. */
export function zeroRecord(b: ProgramBuilder, dst: number, size: number): void {
  let p = 0;
  for (; p + 8 <= size; p += 8) b.emit(st("DW", R7, dst + p, 0));
  for (; p < size; p++) b.emit(st("B", R7, dst + p, 0));
}

/**
 * Runs `emit` with R8 (the saved state) known to be set; otherwise zeroes the field, so no
 * stale bytes of an earlier event reach anyone.
 */
export function withState(
  b: ProgramBuilder,
  dst: number,
  size: number,
  emit: () => void,
): void {
  const none = b.fresh("no_state");
  const done = b.fresh("state_done");
  b.emit(jmp("JEQ", R8, imm(0), none));
  emit();
  b.emit(ja(done)).mark(none);
  zeroRecord(b, dst, size);
  b.mark(done);
}

/**
 * Writes a constant NUL-terminated text at R7 + `at`, zero-padded up to `size` bytes when
 * given (so that a text field of one size compares, and keys, by all its bytes).
 */
export function writeText(b: ProgramBuilder, at: number, text: string, size = 0): void {
  const bytes = [...new TextEncoder().encode(text), 0];
  for (let p = 0; p < Math.max(bytes.length, size); p += 8) {
    let word = 0n;
    for (let i = Math.min(8, bytes.length - p) - 1; i >= 0; i--) {
      word = (word << 8n) | BigInt(bytes[p + i]);
    }
    if (word === 0n) b.emit(st("DW", R7, at + p, 0));
    else b.emit(ldImm64(R0, word), stx("DW", R7, at + p, R0));
  }
}

/** A capture copying `size` bytes from the context, or from the saved state when `state`. */
export function copyFrom(
  from: "ctx" | "state",
  off: number,
  size: number,
): EventField["capture"] {
  if (from === "ctx") return (b, dst) => emitCopy(b, R6, off, size, dst);
  return (b, dst) => withState(b, dst, size, () => emitCopy(b, R8, off, size, dst));
}

/**
 * A capture reading a NUL-terminated string through a pointer (`user` or `kernel`) or a
 * tracepoint `__data_loc` word, at `off` in the context or the saved state. The area is
 * zeroed first so that equal strings have equal bytes (they may become map keys).
 */
export function stringFrom(
  from: "ctx" | "state",
  off: number,
  source: "user" | "kernel" | "data_loc",
  size: number,
): EventField["capture"] {
  const read = (b: ProgramBuilder, base: Reg, dst: number) => {
    zeroRecord(b, dst, size);
    if (source === "data_loc") {
      // __data_loc word: low 16 bits = offset from the context start, high 16 = length.
      b.emit(ldx("W", R3, base, off), alu64("AND", R3, imm(0xffff)), alu64("ADD", R3, R6));
    } else {
      b.emit(ldx("DW", R3, base, off));
    }
    b.emit(
      mov64(R1, R7),
      alu64("ADD", R1, imm(dst)),
      mov64(R2, imm(size)),
      call(source === "user" ? "probe_read_user_str" : "probe_read_kernel_str"),
    );
  };
  if (from === "ctx") return (b, dst) => read(b, R6, dst);
  return (b, dst) => withState(b, dst, size, () => read(b, R8, dst));
}

/**
 * A capture reading up to `size` bytes of user memory through the pointer at `off`, storing
 * how many in the u32 at the field's start and the bytes after it. The count comes from a
 * word (an argument, a return value) clamped to [0, size], or is `size`; a failed read
 * stores 0.
 */
export function bufferFrom(
  from: "ctx" | "state",
  off: number,
  size: number,
  length?: { from: "ctx" | "state"; offset: number },
): EventField["capture"] {
  const read = (b: ProgramBuilder, base: Reg, dst: number) => {
    const nonNegative = b.fresh("len_ok");
    const bounded = b.fresh("len_bounded");
    const done = b.fresh("buf_done");
    if (length) b.emit(ldx("DW", R2, length.from === "ctx" ? R6 : R8, length.offset));
    else b.emit(mov64(R2, imm(size)));
    // Clamp to [0, size] on every path, so the verifier sees a bounded size.
    b.emit(jmp("JSGE", R2, imm(0), nonNegative), mov64(R2, imm(0))).mark(nonNegative);
    b.emit(jmp("JLE", R2, imm(size), bounded), mov64(R2, imm(size))).mark(bounded);
    b.emit(
      stx("W", R7, dst, R2),
      ldx("DW", R3, base, off),
      mov64(R1, R7),
      alu64("ADD", R1, imm(dst + 8)),
      call("probe_read_user"),
      jmp("JSGE", R0, imm(0), done),
      st("W", R7, dst, 0),
    ).mark(done);
  };
  if (from === "ctx") return (b, dst) => read(b, R6, dst);
  return (b, dst) => withState(b, dst, 8, () => read(b, R8, dst));
}

/** The fields every probe has: who, where and when. */
export function headerFields(): EventField[] {
  const u32 = { type: "int", size: 4, signed: false } as const;
  return [
    field(["pid"], u32, (b, dst) => {
      b.currentPidTgid().emit(alu64("RSH", R0, imm(32)), stx("W", R7, dst, R0));
    }),
    field(["tid"], u32, (b, dst) => {
      b.currentPidTgid().emit(stx("W", R7, dst, R0));
    }),
    field(["comm"], { type: "string", size: 16 }, (b, dst) => {
      b.currentComm(R7, dst);
    }),
    field(["cpu"], u32, (b, dst) => {
      b.emit(call("get_smp_processor_id"), stx("W", R7, dst, R0));
    }),
    field(["timestampNs"], { type: "int", size: 8, signed: false }, (b, dst) => {
      b.emit(stx("DW", R7, dst, R9));
    }),
    ...stackFields(),
  ];
}

/** The fields every event has. */
export interface EventHeader {
  /** Process id (thread group id). */
  pid: number;
  /** Thread id. */
  tid: number;
  /** Command name of the current task (at most 15 characters). */
  comm: string;
  /** CPU the probe fired on. */
  cpu: number;
  /** Kernel monotonic time of the probe, in nanoseconds (`bpf_ktime_get_ns`). */
  timestampNs: number;
  /**
   * The kernel stack, leaf first ("vfs_read+20"); in kernel lambdas an id, usable as an
   * aggregation key (`count((e) => e.kstack)`) that is named when read. Captured only for a
   * handler that names it (not for one that passes the whole event on).
   */
  kstack: string[];
  /** The user stack, leaf first ("main+12", "[unknown] 0x7f... (libc.so.6)"); as kstack. */
  ustack: string[];
  /**
   * The current task's `struct task_struct`, members read through the kernel's BTF when a
   * lambda or handler names them: `e.task.real_parent.tgid`, `e.task.mm.arg_start`.
   */
  // deno-lint-ignore no-explicit-any
  task: any;
}

/** A capture of the time since the saved state's entry time, all ones when none was saved. */
export function latencyFromState(): EventField["capture"] {
  return (b, dst) => {
    const none = b.fresh("no_entry");
    const done = b.fresh("latency_done");
    b.emit(
      jmp("JEQ", R8, imm(0), none),
      ldx("DW", R1, R8, 0),
      mov64(R2, R9),
      alu64("SUB", R2, R1),
      stx("DW", R7, dst, R2),
      ja(done),
    ).mark(none);
    b.emit(st("DW", R7, dst, -1)).mark(done);
  };
}
