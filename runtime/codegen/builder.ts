/**
 * A program under construction: an instruction list, fresh labels, and a stack allocator for
 * the 512-byte BPF frame below R10.
 *
 * @module
 */
import {
  alu64,
  call,
  exit,
  imm,
  type Item,
  jmp,
  jmp32,
  label,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  type Reg,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import { EEXIST } from "../../bpf/errors.ts";
import { UpdateFlag } from "../../bpf/map.ts";

const STACK_SIZE = 512;
/**
 * Bytes a `loop` call may take in its caller's frame: the verifier inlines the helper (6.0+)
 * and keeps its counter and arguments there.
 */
const LOOP_INLINING = 24;

/** Raised when generated code would not fit the BPF stack. */
export class StackOverflowError extends Error {
  constructor(requested: number, left: number) {
    super(
      `Generated program needs ${requested} more stack bytes but only ${left} of 512 are ` +
        `left: capture fewer or shorter strings`,
    );
    this.name = "StackOverflowError";
  }
}

/** Builds one program's instructions: the main function, then any callbacks. */
export class ProgramBuilder {
  /** Stack slot of the current element's index while a repeated body runs (see HookPlan). */
  loopIndex: number | undefined;
  /**
   * Stack slot of this task's `pid_tgid` where the frame took it before anything else (see
   * {@link currentPidTgid}); unset in callbacks, whose stack is their own.
   */
  pidTgidAt: number | undefined;
  #labels = 0;
  /** The function being written: the main program's, or a callback's while one is. */
  #current: Item[] = [];
  readonly #main = this.#current;
  readonly #callbacks: Item[] = [];
  /** Stack bytes the current function uses, and may use (its frame shares the 512). */
  #stack = 0;
  #limit = STACK_SIZE;
  /** Slots the current function reuses, by purpose (see {@link slot}). */
  #slots = new Map<string, number>();

  /** The program: the main function, then the callbacks. */
  get items(): Item[] {
    return [...this.#main, ...this.#callbacks];
  }

  /** Appends instructions and label markers. */
  emit(...items: Item[]): this {
    this.#current.push(...items);
    return this;
  }

  /**
   * Writes a callback (a subprogram for the `loop` helper) with `body`, in a frame of its own:
   * R10 is its stack, which shares the 512 bytes with the caller's; registers are not shared.
   * Returns its entry label, for `ldFunc`.
   */
  callback(body: (b: this) => void): string {
    const entry = this.fresh("callback");
    const caller = {
      items: this.#current,
      stack: this.#stack,
      limit: this.#limit,
      slots: this.#slots,
    };
    const pidTgidAt = this.pidTgidAt;
    this.#current = [];
    this.#stack = 0;
    this.#limit = caller.limit - caller.stack - LOOP_INLINING;
    this.#slots = new Map();
    this.pidTgidAt = undefined;
    this.mark(entry);
    body(this);
    this.pidTgidAt = pidTgidAt;
    this.#callbacks.push(...this.#current);
    const used = this.#stack;
    this.#current = caller.items;
    this.#stack = caller.stack;
    this.#limit = caller.limit - used - LOOP_INLINING;
    this.#slots = caller.slots;
    return entry;
  }

  /** A label name unique within this program. */
  fresh(prefix: string): string {
    return `${prefix}_${this.#labels++}`;
  }

  /** Places a label here. */
  mark(name: string): this {
    return this.emit(label(name));
  }

  /** Reserves `size` bytes of stack aligned to 8; returns the R10-relative offset (negative). */
  alloc(size: number): number {
    const aligned = Math.ceil(size / 8) * 8;
    if (this.#stack + aligned > this.#limit) {
      throw new StackOverflowError(aligned, this.#limit - this.#stack);
    }
    this.#stack += aligned;
    return -this.#stack;
  }

  /**
   * An 8-byte slot of the current function for one `purpose` (a counter's key, a pointer a
   * kernel read fetches on its way), allocated on first use and shared by later uses.
   */
  slot(purpose: string): number {
    let at = this.#slots.get(purpose);
    if (at === undefined) {
      at = this.alloc(8);
      this.#slots.set(purpose, at);
    }
    return at;
  }

  /** Zeroes `size` bytes (a multiple of 8) of stack at `off`, as the verifier wants for keys. */
  zero(off: number, size: number): this {
    for (let p = 0; p < size; p += 8) this.emit(st("DW", R10, off + p, 0));
    return this;
  }

  /** `R2 = R10 + off`: a pointer to a stack slot in the second argument register. */
  stackPtr(reg: Reg, off: number): this {
    return this.emit(mov64(reg, R10), alu64("ADD", reg, imm(off)));
  }

  /**
   * `R0 = map_lookup_elem(map, &stack[keyOff])`; jumps to `missing` when there is no entry.
   */
  lookup(map: string, keyOff: number, missing: string): this {
    this.emit(ldMap(R1, map));
    this.stackPtr(R2, keyOff);
    return this.emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), missing));
  }

  /** `map_update_elem(map, &stack[keyOff], &stack[valueOff], flags)` */
  update(map: string, keyOff: number, valueOff: number, flags = 0): this {
    this.emit(ldMap(R1, map));
    this.stackPtr(R2, keyOff);
    this.stackPtr(R3, valueOff);
    return this.emit(mov64(4, imm(flags)), call("map_update_elem"));
  }

  /**
   * Stores key → value where the key is new; where it is not (an entry no later probe took),
   * replaces it and counts one in `replaced`; a store that fails counts one in `lost`. Both
   * are `[counter map, slot]`, and may be the same counter.
   */
  insert(
    map: string,
    keyOff: number,
    valueOff: number,
    replaced: readonly [string, number],
    lost: readonly [string, number],
  ): this {
    const stored = this.fresh("stored");
    const failed = this.fresh("store_failed");
    this.update(map, keyOff, valueOff, Number(UpdateFlag.noexist));
    // 32-bit: map operations return an int, which kernels before 6.4 leave zero-extended.
    this.emit(jmp("JEQ", R0, imm(0), stored), jmp32("JNE", R0, imm(-EEXIST), failed));
    this.increment(...replaced).update(map, keyOff, valueOff);
    this.emit(jmp("JEQ", R0, imm(0), stored)).mark(failed);
    return this.increment(...lost).mark(stored);
  }

  /**
   * Adds 1 (or the u64 in stack slot `by`) to entry `index` of a per-CPU array of u64
   * counters. No atomic needed: a CPU's value is only written by programs on that CPU, which
   * do not interrupt each other.
   */
  increment(map: string, index = 0, by?: number): this {
    const key = this.slot("counter key");
    const done = this.fresh("inc_done");
    this.emit(st("DW", R10, key, index));
    this.lookup(map, key, done);
    this.emit(ldx("DW", R1, R0, 0));
    if (by === undefined) this.emit(alu64("ADD", R1, imm(1)));
    else this.emit(ldx("DW", R2, R10, by), alu64("ADD", R1, R2));
    return this.emit(stx("DW", R0, 0, R1), label(done));
  }

  /**
   * `get_current_comm` into the 16 bytes at `reg + off`, zeroed first: older kernels (6.1)
   * copy with strscpy and leave the bytes after the NUL as they were, and a comm is compared
   * and used as a map key as all 16 bytes.
   */
  currentComm(reg: Reg, off: number): this {
    this.emit(st("DW", reg, off, 0), st("DW", reg, off + 8, 0), mov64(R1, reg));
    if (off !== 0) this.emit(alu64("ADD", R1, imm(off)));
    return this.emit(mov64(R2, imm(16)), call("get_current_comm"));
  }

  /**
   * `R0 =` this task's `pid_tgid`: read from the frame's slot where it has one (a helper call
   * saved), else from the helper, which clobbers R1-R5.
   */
  currentPidTgid(): this {
    if (this.pidTgidAt === undefined) return this.emit(call("get_current_pid_tgid"));
    return this.emit(ldx("DW", R0, R10, this.pidTgidAt));
  }

  /** `return 0` */
  ret(): this {
    return this.emit(mov64(R0, imm(0)), exit());
  }
}
