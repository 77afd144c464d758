/**
 * The frame of every probe program: filter by process, take the time, point R7 at the record
 * (a per-CPU scratch map value), load or save per-thread state, then run the body the compiler
 * generated (captures, predicates, aggregations, output) and clean up the state.
 *
 * Registers: R6 = context, R7 = record, R8 = state value (or 0), R9 = probe time. The time is
 * taken only when the generated code reads R9: most programs that only count never do.
 *
 * @module
 */
import {
  alu64,
  call,
  exit,
  imm,
  ja,
  jmp,
  ldFunc,
  ldImm64,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R4,
  R6,
  R7,
  R8,
  R9,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import type { Instruction, Item, Reg } from "../../bpf/asm/mod.ts";
import { ProgramBuilder } from "./builder.ts";

/** Which processes a probe fires for, decided in the kernel before anything else. */
export interface Filter {
  /** Name of a hash map keyed by u32 tgid: only processes in it pass. */
  pidsMap?: string;
  /** Only tasks with exactly this command name (at most 15 bytes) pass. */
  comm?: string;
  /** Processes (tgids) that never pass: the tracer's own. */
  exclude?: readonly number[];
}

/**
 * State carried from one probe to another in a hash map: the first probe's time and saved
 * words, keyed by the thread (`pid_tgid`) unless `key` says otherwise (a request's address).
 */
export interface ThreadState {
  map: string;
  /** `save`: store time and `words` from the context; `load`: read them back and delete. */
  mode: "save" | "load";
  /** Words the map's value holds after the 8-byte time (see {@link stateValueSize}). */
  capacity: number;
  /**
   * Context offset and count of the words `save` keeps (the rest are zeroed), read directly:
   * aligned, from offset 8 on, and within the context (a tracepoint's record: the kernel refuses
   * to attach a program reading past it).
   */
  ctxOffset?: number;
  words?: number;
  /** Leaves the key in R0 (may clobber R1-R5); default: this thread's `pid_tgid`. */
  key?: (b: ProgramBuilder) => void;
  /** Writes the `words` saved words at stack offset `at`, instead of copying the context's. */
  fill?: (b: ProgramBuilder, at: number) => void;
  /** `load` only: without saved state the event is skipped. */
  required?: boolean;
  /**
   * `save` only: the entry of a per-CPU counter array that counts saves no load will pair:
   * those that replace a state never loaded, and those the map refused.
   */
  unpaired?: { map: string; index: number };
}

function emitKey(b: ProgramBuilder, st8: ThreadState): void {
  if (st8.key) st8.key(b);
  else b.currentPidTgid();
}

/** Bytes of a saved-state value: the time, then the saved words. */
export function stateValueSize(words: number): number {
  return 8 + 8 * words;
}

function emitFilter(b: ProgramBuilder, f: Filter, out: string, subject?: FilterSubject): void {
  if (!subject && (f.exclude?.length || f.pidsMap)) {
    // Taken once: the state's key and the pid and tid fields read it again.
    b.pidTgidAt = b.alloc(8);
    b.emit(call("get_current_pid_tgid"), stx("DW", R10, b.pidTgidAt, R0));
  }
  if (f.exclude?.length) {
    if (subject) subject.pidTgid(b); // else R0 holds it, just taken
    b.emit(alu64("RSH", R0, imm(32)));
    for (const tgid of f.exclude) b.emit(jmp("JEQ", R0, imm(tgid), out));
  }
  if (f.pidsMap) {
    const key = b.alloc(8);
    if (subject) subject.pidTgid(b);
    else b.currentPidTgid();
    b.emit(alu64("RSH", R0, imm(32)), stx("W", R10, key, R0));
    b.lookup(f.pidsMap, key, out);
  }
  if (f.comm !== undefined) {
    const buf = b.alloc(16);
    if (subject) subject.comm(b, buf);
    else b.currentComm(R10, buf);
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

function emitSaveState(b: ProgramBuilder, st8: ThreadState, timed: boolean): void {
  const words = st8.words ?? 0;
  const key = b.alloc(8);
  const value = b.alloc(stateValueSize(st8.capacity));
  b.zero(value + 8 + 8 * words, 8 * (st8.capacity - words));
  emitKey(b, st8);
  b.emit(stx("DW", R10, key, R0), timed ? stx("DW", R10, value, R9) : st("DW", R10, value, 0));
  if (st8.fill) st8.fill(b, value + 8);
  else if (words > 0) {
    const from = st8.ctxOffset ?? 0;
    if (from < 8 || from % 8 !== 0) {
      throw new Error(`internal: context words at offset ${from} cannot be read directly`);
    }
    for (let w = 0; w < 8 * words; w += 8) {
      b.emit(ldx("DW", R1, R6, from + w), stx("DW", R10, value + 8 + w, R1));
    }
  }
  if (!st8.unpaired) {
    b.update(st8.map, key, value);
    return;
  }
  // A start whose end never came, and one that could not be kept, are both unpaired.
  const unpaired = [st8.unpaired.map, st8.unpaired.index] as const;
  b.insert(st8.map, key, value, unpaired, unpaired);
}

/** Looks up this thread's saved state into R8 (0 when none) and deletes it. */
function emitLoadState(b: ProgramBuilder, st8: ThreadState, keyOff: number): void {
  const none = b.fresh("no_state");
  emitKey(b, st8);
  b.emit(stx("DW", R10, keyOff, R0), mov64(R8, imm(0)));
  b.lookup(st8.map, keyOff, none);
  b.emit(mov64(R8, R0)).mark(none);
}

/** Everything one probe program is generated from. */
/** Whose pid and comm the process filter checks, when not the current task's. */
export interface FilterSubject {
  /** Leaves the subject's `pid_tgid` in R0; may clobber R1-R5. */
  pidTgid(b: ProgramBuilder): void;
  /** Writes the subject's 16-byte comm at R10 + `at`, NUL-padded. */
  comm(b: ProgramBuilder, at: number): void;
}

export interface ProbeProgramSpec {
  filter: Filter;
  subject?: FilterSubject;
  /** Jumps to `skip` for events the probe does not cover (R6 holds the context). */
  guard?: (b: ProgramBuilder, skip: string) => void;
  /** Per-CPU array whose single value is the record R7 points at; absent: R7 is unset. */
  scratch?: string;
  state?: ThreadState;
  /** The probe's own code: captures, predicates, aggregations, output. */
  body?: (b: ProgramBuilder) => void;
  /**
   * false: nothing needs the probe time (a saved state's time is 0, R9 is 0 where read), so
   * the helper call is saved. Otherwise the time is taken when the program reads it.
   */
  time?: false;
}

/** The frame's registers a callback sets up again (see {@link emitEach}). */
export type Frame = Pick<ProbeProgramSpec, "scratch" | "state">;

/** How many rounds {@link emitEach} runs, and where it counts those it cannot. */
export interface Rounds {
  /** Leaves the wanted count in R0 (negative: none); may clobber R1-R5. */
  count(b: ProgramBuilder): void;
  /** Most rounds run (at most 2^23, the helper's limit). */
  max: number;
  /** Entry of a per-CPU counter array that gets the rounds beyond `max`. */
  overflow: { map: string; index: number };
}

/**
 * Runs `body` for each i below `rounds.count` through the `loop` helper (5.17+): the verifier
 * checks the body once, not once per round, so thousands of rounds cost what one does. In the
 * body, as in the frame, R7 is the record, R8 the state and R9 the probe time, and i is in the
 * stack slot `loopIndex`; the context (R6) is not available.
 */
export function emitEach(
  b: ProgramBuilder,
  frame: Frame,
  rounds: Rounds,
  body: (b: ProgramBuilder) => void,
): void {
  const time = b.alloc(8);
  const n = b.alloc(8);
  b.emit(stx("DW", R10, time, R9));
  const entry = b.callback((cb) => {
    const stop = cb.fresh("stop");
    const index = cb.alloc(8);
    cb.emit(stx("DW", R10, index, R1), ldx("DW", R9, R2, 0));
    if (frame.scratch) {
      const key = cb.alloc(8);
      cb.emit(st("DW", R10, key, 0)).lookup(frame.scratch, key, stop).emit(mov64(R7, R0));
    }
    if (frame.state?.mode === "load") {
      const key = cb.alloc(8);
      const none = cb.fresh("no_state");
      const found = cb.fresh("state");
      emitKey(cb, frame.state);
      cb.emit(stx("DW", R10, key, R0)).lookup(frame.state.map, key, none);
      cb.emit(mov64(R8, R0), ja(found)).mark(none);
      if (frame.state.required) cb.emit(ja(stop));
      cb.emit(mov64(R8, imm(0))).mark(found);
    }
    cb.loopIndex = index;
    body(cb);
    cb.loopIndex = undefined;
    cb.emit(mov64(R0, imm(0)), exit()).mark(stop).emit(mov64(R0, imm(1)), exit());
  });
  const positive = b.fresh("positive");
  const fits = b.fresh("fits");
  rounds.count(b);
  b.emit(jmp("JSGT", R0, imm(0), positive), mov64(R0, imm(0))).mark(positive);
  b.emit(stx("DW", R10, n, R0), jmp("JSLE", R0, imm(rounds.max), fits));
  b.emit(alu64("SUB", R0, imm(rounds.max)), stx("DW", R10, n, R0));
  b.increment(rounds.overflow.map, rounds.overflow.index, n);
  b.emit(st("DW", R10, n, rounds.max)).mark(fits);
  b.emit(ldx("DW", R1, R10, n), ldFunc(R2, entry)).stackPtr(R3, time);
  b.emit(mov64(R4, imm(0)), call("loop"));
}

/** Generates the instructions of a probe program. */
export function probeProgram(spec: ProbeProgramSpec): Item[] {
  const b = new ProgramBuilder();
  const out = "out";
  b.emit(mov64(R6, R1));
  spec.guard?.(b, out);
  emitFilter(b, spec.filter, out, spec.subject);
  const time = spec.time === false ? [mov64(R9, imm(0))] : [call("ktime_get_ns"), mov64(R9, R0)];
  b.emit(...time);
  if (spec.scratch) {
    const key = b.alloc(8);
    b.emit(st("DW", R10, key, 0));
    b.lookup(spec.scratch, key, out);
    b.emit(mov64(R7, R0));
  }
  const state = spec.state;
  const stateKey = state?.mode === "load" ? b.alloc(8) : 0;
  if (state?.mode === "save") emitSaveState(b, state, spec.time !== false);
  if (state?.mode === "load") {
    emitLoadState(b, state, stateKey);
    if (state.required) b.emit(jmp("JEQ", R8, imm(0), out));
  }
  spec.body?.(b);
  if (state?.mode === "load") {
    const skip = b.fresh("no_delete");
    b.emit(jmp("JEQ", R8, imm(0), skip), ldMap(R1, state.map));
    b.stackPtr(R2, stateKey).emit(call("map_delete_elem")).mark(skip);
  }
  b.mark(out).ret();
  // Taking the time costs a helper call: kept only where an instruction of the program reads
  // R9 (the frame's own setting of it aside).
  const items = b.items;
  return items.some((i) => !time.includes(i as Instruction) && mentions(i, R9))
    ? items
    : items.filter((i) => !time.includes(i as Instruction));
}

/** True for an instruction with `reg` as an operand (read or written). */
function mentions(item: Item, reg: Reg): boolean {
  return !("label" in item) && (item.dst === reg || item.src === reg);
}
