/**
 * Generates the program behind a probe that streams events: filter, optional per-thread state
 * (save at entry, load at return for latency), reserve a record in the ring buffer, write the
 * header, copy fields and strings, submit. A failed reserve is counted, never silent.
 *
 * Registers: R6 = context, R7 = record, R8 = state value (or 0), R9 = probe time.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  type Item,
  ja,
  jmp,
  ldImm64,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R6,
  R7,
  R8,
  R9,
  type Reg,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { ProgramBuilder } from "./builder.ts";
import { Header } from "./record.ts";

/** Which processes a probe fires for, decided in the kernel before anything else. */
export interface Filter {
  /** Name of a hash map keyed by u32 tgid: only processes in it pass. */
  pidsMap?: string;
  /** Only tasks with exactly this command name (at most 15 bytes) pass. */
  comm?: string;
}

/** Copies `size` bytes from the context or the state value into the record. */
export interface Copy {
  from: "ctx" | "state";
  srcOffset: number;
  size: number;
  dstOffset: number;
}

/** Reads a NUL-terminated string into the record through a pointer or a `__data_loc` word. */
export interface StringRead {
  from: "ctx" | "state";
  /** Where the 8-byte pointer, or the u32 `__data_loc` word, is. */
  srcOffset: number;
  /** `user`: a user-space pointer; `kernel`: a kernel pointer; `data_loc`: in the context. */
  source: "user" | "kernel" | "data_loc";
  dstOffset: number;
  size: number;
}

/**
 * Reads up to `size` bytes of user memory through a pointer into the record, storing how many
 * in a u32 at `lengthOffset`. The count comes from a word (an argument, a return value) clamped
 * to [0, size], or is `size`; a failed read stores 0.
 */
export interface BufferRead {
  from: "ctx" | "state";
  /** Where the 8-byte user pointer is. */
  srcOffset: number;
  length?: { from: "ctx" | "state"; offset: number };
  dstOffset: number;
  lengthOffset: number;
  size: number;
}

/** Per-thread state kept in a hash map keyed by `pid_tgid`: entry time and saved words. */
export interface ThreadState {
  map: string;
  /** `save`: store time and `words` from the context; `load`: read them back and delete. */
  mode: "save" | "load";
  /** Words the map's value holds after the 8-byte time (see {@link stateValueSize}). */
  capacity: number;
  /** Context offset and count of the words `save` keeps (the rest are zeroed). */
  ctxOffset?: number;
  words?: number;
  /** Record offset for `now - saved time` (`load` only); u64 max when no entry was saved. */
  latencyOffset?: number;
}

/** Everything one event program is generated from. */
export interface EventProgramSpec {
  probeIndex: number;
  filter: Filter;
  /** Ring buffer map and per-CPU drop counter map. Absent: the program emits no event. */
  output?: { events: string; drops: string; recordSize: number };
  copies: readonly Copy[];
  strings: readonly StringRead[];
  buffers?: readonly BufferRead[];
  state?: ThreadState;
}

/** Bytes of a saved-state value: the time, then the saved words. */
export function stateValueSize(words: number): number {
  return 8 + 8 * words;
}

function emitFilter(b: ProgramBuilder, f: Filter, out: string): void {
  if (f.pidsMap) {
    const key = b.alloc(8);
    b.emit(
      call("get_current_pid_tgid"),
      alu64("RSH", R0, imm(32)),
      stx("W", R10, key, R0),
    );
    b.lookup(f.pidsMap, key, out);
  }
  if (f.comm !== undefined) {
    const buf = b.alloc(16);
    b.zero(buf, 16);
    b.stackPtr(R1, buf).emit(mov64(R2, imm(16)), call("get_current_comm"));
    const want = new Uint8Array(16);
    want.set(new TextEncoder().encode(f.comm).subarray(0, 15));
    const words = new DataView(want.buffer);
    for (const half of [0, 8]) {
      b.emit(
        ldx("DW", R1, R10, buf + half),
        ldImm64(R2, words.getBigUint64(half, true)),
        jmp("JNE", R1, R2, out),
      );
    }
  }
}

/** `probe_read_*(R7 + dst, size, base + off)` */
function emitCopy(b: ProgramBuilder, base: Reg, c: Copy): void {
  b.emit(
    mov64(R1, R7),
    alu64("ADD", R1, imm(c.dstOffset)),
    mov64(R2, imm(c.size)),
    mov64(R3, base),
    alu64("ADD", R3, imm(c.srcOffset)),
    call("probe_read_kernel"),
  );
}

function emitString(b: ProgramBuilder, base: Reg, s: StringRead): void {
  if (s.source === "data_loc") {
    // __data_loc word: low 16 bits = offset from the context start, high 16 = length.
    b.emit(ldx("W", R3, base, s.srcOffset), alu64("AND", R3, imm(0xffff)), alu64("ADD", R3, R6));
  } else {
    b.emit(ldx("DW", R3, base, s.srcOffset));
  }
  b.emit(
    mov64(R1, R7),
    alu64("ADD", R1, imm(s.dstOffset)),
    mov64(R2, imm(s.size)),
    call(s.source === "user" ? "probe_read_user_str" : "probe_read_kernel_str"),
  );
}

function emitBuffer(b: ProgramBuilder, base: Reg, r: BufferRead): void {
  const nonNegative = b.fresh("len_ok");
  const bounded = b.fresh("len_bounded");
  const done = b.fresh("buf_done");
  if (r.length) {
    b.emit(ldx("DW", R2, r.length.from === "ctx" ? R6 : R8, r.length.offset));
  } else {
    b.emit(mov64(R2, imm(r.size)));
  }
  // Clamp to [0, size] on every path, so the verifier sees a bounded size.
  b.emit(jmp("JSGE", R2, imm(0), nonNegative), mov64(R2, imm(0))).mark(nonNegative);
  b.emit(jmp("JLE", R2, imm(r.size), bounded), mov64(R2, imm(r.size))).mark(bounded);
  b.emit(
    stx("W", R7, r.lengthOffset, R2),
    ldx("DW", R3, base, r.srcOffset),
    mov64(R1, R7),
    alu64("ADD", R1, imm(r.dstOffset)),
    call("probe_read_user"),
    jmp("JSGE", R0, imm(0), done),
    st("W", R7, r.lengthOffset, 0),
  ).mark(done);
}

function emitSaveState(b: ProgramBuilder, st8: ThreadState): void {
  const words = st8.words ?? 0;
  const key = b.alloc(8);
  const value = b.alloc(stateValueSize(st8.capacity));
  b.zero(value + 8 + 8 * words, 8 * (st8.capacity - words));
  b.emit(call("get_current_pid_tgid"), stx("DW", R10, key, R0), stx("DW", R10, value, R9));
  if (words > 0) {
    b.stackPtr(R1, value + 8).emit(
      mov64(R2, imm(8 * words)),
      mov64(R3, R6),
      alu64("ADD", R3, imm(st8.ctxOffset ?? 0)),
      call("probe_read_kernel"),
    );
  }
  b.update(st8.map, key, value);
}

/** Looks up this thread's saved state into R8 (0 when none) and deletes it. */
function emitLoadState(b: ProgramBuilder, st8: ThreadState, keyOff: number): void {
  const none = b.fresh("no_state");
  b.emit(call("get_current_pid_tgid"), stx("DW", R10, keyOff, R0), mov64(R8, imm(0)));
  b.lookup(st8.map, keyOff, none);
  b.emit(mov64(R8, R0)).mark(none);
}

/** Generates the instructions of an event program. */
export function eventProgram(spec: EventProgramSpec): Item[] {
  const b = new ProgramBuilder();
  const out = "out";
  b.emit(mov64(R6, R1));
  emitFilter(b, spec.filter, out);
  b.emit(call("ktime_get_ns"), mov64(R9, R0));
  const state = spec.state;
  const stateKey = state?.mode === "load" ? b.alloc(8) : 0;
  if (state?.mode === "save") emitSaveState(b, state);
  if (state?.mode === "load") emitLoadState(b, state, stateKey);
  if (spec.output) emitRecord(b, spec, spec.output);
  if (state?.mode === "load") {
    const skip = b.fresh("no_delete");
    b.emit(jmp("JEQ", R8, imm(0), skip), ldMap(R1, state.map));
    b.stackPtr(R2, stateKey).emit(call("map_delete_elem")).mark(skip);
  }
  b.mark(out).ret();
  return b.items;
}

function emitRecord(
  b: ProgramBuilder,
  spec: EventProgramSpec,
  output: NonNullable<EventProgramSpec["output"]>,
): void {
  const reserved = b.fresh("reserved");
  const done = b.fresh("emitted");
  b.emit(
    ldMap(R1, output.events),
    mov64(R2, imm(output.recordSize)),
    mov64(R3, imm(0)),
    call("ringbuf_reserve"),
    jmp("JNE", R0, imm(0), reserved),
  );
  b.increment(output.drops);
  b.emit(ja(done));
  b.mark(reserved).emit(
    mov64(R7, R0),
    st("W", R7, Header.probe, spec.probeIndex),
    stx("DW", R7, Header.time, R9),
    call("get_smp_processor_id"),
    stx("W", R7, Header.cpu, R0),
    call("get_current_pid_tgid"),
    stx("W", R7, Header.tid, R0),
    alu64("RSH", R0, imm(32)),
    stx("W", R7, Header.pid, R0),
    mov64(R1, R7),
    alu64("ADD", R1, imm(Header.comm)),
    mov64(R2, imm(16)),
    call("get_current_comm"),
  );
  const fromCtx = (x: { from: "ctx" | "state" }) => x.from === "ctx";
  spec.copies.filter(fromCtx).forEach((c) => emitCopy(b, R6, c));
  spec.strings.filter(fromCtx).forEach((s) => emitString(b, R6, s));
  const buffers = spec.buffers ?? [];
  buffers.filter(fromCtx).forEach((r) => emitBuffer(b, R6, r));
  const state = spec.state;
  if (state?.mode === "load") {
    const none = b.fresh("no_entry");
    const joined = b.fresh("state_done");
    b.emit(jmp("JEQ", R8, imm(0), none));
    spec.copies.filter((c) => !fromCtx(c)).forEach((c) => emitCopy(b, R8, c));
    spec.strings.filter((s) => !fromCtx(s)).forEach((s) => emitString(b, R8, s));
    buffers.filter((r) => !fromCtx(r)).forEach((r) => emitBuffer(b, R8, r));
    if (state.latencyOffset !== undefined) {
      b.emit(
        ldx("DW", R1, R8, 0),
        mov64(R2, R9),
        alu64("SUB", R2, R1),
        stx("DW", R7, state.latencyOffset, R2),
      );
    }
    b.emit(ja(joined)).mark(none);
    // No saved entry: zero what it would have filled, so no stale bytes reach JavaScript.
    for (const c of spec.copies.filter((c) => !fromCtx(c))) {
      for (let p = 0; p < c.size; p += 8) b.emit(st("DW", R7, c.dstOffset + p, 0));
    }
    spec.strings.filter((s) => !fromCtx(s)).forEach((s) => b.emit(st("B", R7, s.dstOffset, 0)));
    buffers.filter((r) => !fromCtx(r)).forEach((r) => b.emit(st("W", R7, r.lengthOffset, 0)));
    if (state.latencyOffset !== undefined) {
      b.emit(st("DW", R7, state.latencyOffset, -1));
    }
    b.mark(joined);
  }
  b.emit(mov64(R1, R7), mov64(R2, imm(0)), call("ringbuf_submit")).mark(done);
}
