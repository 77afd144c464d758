/**
 * Reading kernel memory through pointer chains such as `next->real_parent->tgid`, with member
 * offsets taken from the running kernel's BTF instead of compiled-in headers.
 *
 * {@link resolveChain} turns a C-like path into pointer dereferences plus a final member;
 * {@link emitKernelRead} and {@link emitKernelReadBytes} generate the code that walks it.
 * Every dereference goes through `bpf_probe_read_kernel`: in raw tracepoint programs the
 * arguments are untrusted scalars that the verifier will not let a program load from directly,
 * and the helper turns a bad address into an error instead of a fault. A NULL pointer anywhere
 * on the way yields 0 (or zeroed bytes), never a fault. Where the root is a BTF-typed pointer
 * (`tp_btf` programs), {@link emitDirectRead} walks the same chain with plain loads.
 *
 * Bitfields are extracted assuming little-endian bit numbering, as on x86_64 and arm64.
 *
 * @module
 */
import {
  alu64,
  call,
  type Helper,
  imm,
  type Instruction,
  jmp,
  ldx,
  mov64,
  R1,
  R10,
  R2,
  R3,
  type Reg,
  type Size,
  st,
} from "../../bpf/asm/mod.ts";
import { type Btf, BtfError, type BtfType, type FieldRef } from "../../bpf/btf.ts";
import type { ProgramBuilder } from "./builder.ts";

/**
 * One pointer dereference on the way: read the 8-byte pointer `offset` bytes past the current
 * address; its value is the next address.
 */
export interface ChainStep {
  /** Byte offset of the pointer from the current address. */
  offset: number;
  /** BTF id of the pointer's type. */
  type: number;
  /** The pointer as a C expression, e.g. "next->real_parent", for listings. */
  expr: string;
}

/** The member a chain ends at, relative to the address reached after the last step. */
export interface ChainField {
  /** Byte offset of the member (of the byte holding its first bit, for a bitfield). */
  offset: number;
  /** Size in bytes of the member's type (of the storage type, for a bitfield). */
  size: number;
  /** First bit of a bitfield within the byte at `offset` (0-7); 0 for other members. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 when the member is not a bitfield. */
  bitfieldSize: number;
  /** BTF id of the member's type, as declared (typedefs kept). */
  type: number;
  /** The C spelling of the type, e.g. "pid_t" or "char[16]". */
  typeName: string;
  /** Whether {@link emitKernelRead} sign-extends it (signed integers and enums). */
  signed: boolean;
  /** Whether it is an integer, enum or pointer of 1, 2, 4 or 8 bytes: {@link emitKernelRead}. */
  scalar: boolean;
  /** A text member: a char array in place (`inline`) or a `char *` to follow (`pointer`). */
  string?: "inline" | "pointer";
}

/** A resolved path: the pointers to follow from the root address, then the member to read. */
export interface KernelChain {
  /** The whole access as C, e.g. "next->real_parent->tgid". */
  expr: string;
  steps: ChainStep[];
  field: ChainField;
}

/** A path that does not fit the kernel's types; the message is one line and says the fix. */
export class ChainError extends BtfError {
  /** The access as written, e.g. "next->real_parent.tgid". */
  readonly expr: string;
  constructor(expr: string, detail: string, suggestions: readonly string[] = []) {
    super(`Cannot read '${expr}': ${detail}`, suggestions);
    this.name = "ChainError";
    this.expr = expr;
  }
}

/** Throws a {@link ChainError} about the path being resolved. */
type Fail = (detail: string, suggestions?: readonly string[]) => never;

type Token =
  | { kind: "name"; name: string }
  | { kind: "dot" | "arrow" }
  | { kind: "index"; index: number };

/** Splits "a->b.c[2]" into names, separators and constant indexes. */
function tokenize(path: string, fail: Fail): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:(->)|(\.)|\[\s*(\d+)\s*\]|([A-Za-z_]\w*))\s*/y;
  while (re.lastIndex < path.length) {
    const at = re.lastIndex;
    const m = re.exec(path);
    if (!m) {
      fail(`unexpected '${path.slice(at)}' at column ${at + 1}; write members as a.b or a->b`);
    }
    if (m[1]) tokens.push({ kind: "arrow" });
    else if (m[2]) tokens.push({ kind: "dot" });
    else if (m[3]) tokens.push({ kind: "index", index: Number(m[3]) });
    else tokens.push({ kind: "name", name: m[4] });
  }
  return tokens;
}

/** `char`, `signed char` or `unsigned char` spelled so: a `u8` typedef is data, not text. */
function isCharType(btf: Btf, id: number): boolean {
  let t = btf.type(id);
  while (
    t.kind === "const" || t.kind === "volatile" || t.kind === "restrict" || t.kind === "type_tag"
  ) {
    t = btf.type(t.target);
  }
  return t.kind === "int" && t.size === 1 && (t.char || /^(signed |unsigned )?char$/.test(t.name));
}

function isAggregate(t: BtfType): t is BtfType & { kind: "struct" | "union" } {
  return t.kind === "struct" || t.kind === "union";
}

/**
 * Resolves `path` against the kernel's types, starting from an address of type `rootTypeId`:
 * a pointer to a struct or union (the usual tracepoint argument, then the path starts as if
 * after "->") or the struct or union itself (then as if after ".").
 *
 * The path uses C syntax: `.` for an embedded member, `->` to follow a pointer, `[n]` for a
 * constant array index or pointer offset: "real_parent->tgid", "se.vruntime",
 * "mm->arg_start", "comm". Anonymous struct and union members are looked through as C does.
 * `rootName` only makes messages and listings read as C ("next->real_parent->tgid").
 *
 * @throws {ChainError} naming the type and the member at fault, with close matches for a
 * misspelled member and the right operator when `.` and `->` are mixed up.
 */
export function resolveChain(
  btf: Btf,
  rootTypeId: number,
  path: string,
  rootName = "root",
): KernelChain {
  const root = btf.resolve(rootTypeId);
  const rootIsPointer = root.kind === "ptr";
  const written = `${rootName}${
    /^\s*(->|\.|\[)/.test(path) ? "" : rootIsPointer ? "->" : "."
  }${path.trim()}`;
  // Annotated so that TypeScript narrows after calls, as it does for `throw`.
  const fail: Fail = (d, s = []) => {
    throw new ChainError(written, d, s);
  };
  const describe = (expr: string, type: number) => `${expr} (${btf.typeName(type)})`;
  if (!rootIsPointer && !isAggregate(root)) {
    fail(`${describe(rootName, rootTypeId)} is neither a struct nor a pointer to one`);
  }

  const tokens = tokenize(path, fail);
  if (tokens.length === 0) fail("the path is empty; name a member");
  // A path may start with its operator ("->comm") or leave it implied by the root's type.
  if (tokens[0].kind === "name") tokens.unshift({ kind: rootIsPointer ? "arrow" : "dot" });

  const steps: ChainStep[] = [];
  let expr = rootName;
  let type = rootTypeId;
  /** Bits from the current address; undefined while the current value is the root register. */
  let bits: number | undefined = rootIsPointer ? undefined : 0;
  let bitfieldSize = 0;

  /** Moves to what the current pointer points at, recording a step unless it is the root. */
  const deref = (): void => {
    if (bits !== undefined) steps.push({ offset: bits / 8, type, expr });
    bits = 0;
    type = btf.pointee(type)!;
  };
  const member = (outer: number, name: string, op: string): void => {
    const ref = lookUp(btf, outer, name, fail);
    bits! += ref.bitOffset;
    type = ref.type;
    bitfieldSize = ref.bitfieldSize;
    expr = `${expr}${op}${name}`;
  };

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.kind === "index") {
      const t = btf.resolve(type);
      if (t.kind === "array") {
        // A zero length is a flexible array member: the kernel sizes it at run time.
        if (t.length > 0 && token.index >= t.length) {
          fail(`index ${token.index} is past the end of ${describe(expr, type)}`);
        }
        bits! += token.index * btf.sizeOf(t.elem) * 8;
        type = t.elem;
      } else if (t.kind === "ptr") {
        const size = sizeOrFail(
          btf,
          t.target,
          () => `${describe(expr, type)} points to no sized type`,
          fail,
        );
        deref();
        bits = token.index * size * 8;
      } else {
        fail(`${describe(expr, type)} is neither an array nor a pointer: it cannot be indexed`);
      }
      expr = `${expr}[${token.index}]`;
      continue;
    }
    if (token.kind === "name") fail(`'${token.name}' must follow '.' or '->'`);
    const next = tokens[i + 1];
    const op = token.kind === "arrow" ? "->" : ".";
    if (next?.kind !== "name") fail(`'${op}' must be followed by a member name`);
    i++;
    const t = btf.resolve(type);
    if (token.kind === "dot") {
      if (t.kind === "ptr") fail(`${describe(expr, type)} is a pointer: use -> instead of .`);
      if (!isAggregate(t)) {
        fail(`${describe(expr, type)} is not a struct or union: it has no member '${next.name}'`);
      }
      member(type, next.name, op);
    } else {
      if (isAggregate(t)) fail(`${describe(expr, type)} is not a pointer: use . instead of ->`);
      if (t.kind !== "ptr") {
        fail(`${describe(expr, type)} is not a pointer: it has no member '${next.name}'`);
      }
      if (bitfieldSize) fail(`${describe(expr, type)} is a bitfield, not a pointer`);
      const target = btf.resolve(t.target);
      if (!isAggregate(target)) {
        const why = target.kind === "fwd" ? "a type whose layout BTF does not have" : "no struct";
        fail(`${describe(expr, type)} points to ${why}: it has no member '${next.name}'`);
      }
      deref();
      member(type, next.name, op);
    }
  }

  // Every path starts with an operator or an index, both of which leave the root register.
  if (bits === undefined) fail("the path names no member");
  const final = btf.resolve(type);
  const size = sizeOrFail(btf, type, () => `${describe(expr, type)} has no size`, fail);
  const signed = (final.kind === "int" || final.kind === "enum") && final.signed;
  let string: ChainField["string"];
  if (final.kind === "array" && isCharType(btf, final.elem)) string = "inline";
  if (final.kind === "ptr" && isCharType(btf, final.target)) string = "pointer";
  return {
    expr,
    steps,
    field: {
      offset: Math.floor(bits! / 8),
      size,
      bitOffset: bitfieldSize ? bits! % 8 : 0,
      bitfieldSize,
      type,
      typeName: btf.typeName(type),
      signed,
      scalar: (final.kind === "int" || final.kind === "enum" || final.kind === "ptr") &&
        [1, 2, 4, 8].includes(size),
      ...(string && { string }),
    },
  };
}

/** `btf.member`, its "not in struct X; did you mean" message put after the path. */
function lookUp(btf: Btf, outer: number, name: string, fail: Fail): FieldRef {
  try {
    return btf.member(outer, name);
  } catch (e) {
    if (!(e instanceof BtfError)) throw e;
    return fail(e.message.charAt(0).toLowerCase() + e.message.slice(1), e.suggestions);
  }
}

function sizeOrFail(btf: Btf, id: number, what: () => string, fail: Fail): number {
  try {
    return btf.sizeOf(id);
  } catch (e) {
    if (e instanceof BtfError) return fail(what());
    throw e;
  }
}

const SIZE_OF: Record<number, Size> = { 1: "B", 2: "H", 4: "W", 8: "DW" };

function noted(i: Instruction, comment: string): Instruction {
  return { ...i, comment };
}

/**
 * Leaves in R3 the address `finalOffset` past the end of the pointer chain `steps` starting at
 * `src`, or 0 when a pointer on the way is NULL; `reached` must label the code right after.
 * Pointers are fetched into the zeroed stack slot `scratch`, so a failed read gives NULL too.
 */
function emitWalk(
  b: ProgramBuilder,
  src: Reg,
  steps: readonly ChainStep[],
  finalOffset: number,
  reached: string,
  scratch: () => number,
): void {
  if (src !== R3) b.emit(mov64(R3, src));
  const offset = (off: number) => {
    // Skipping the add for NULL keeps R3 at 0, which the read helpers reject with an error.
    if (off !== 0) b.emit(jmp("JEQ", R3, imm(0), reached), alu64("ADD", R3, imm(off)));
  };
  for (const step of steps) {
    const slot = scratch();
    offset(step.offset);
    b.emit(st("DW", R10, slot, 0)).stackPtr(R1, slot).emit(
      mov64(R2, imm(8)),
      noted(call("probe_read_kernel"), step.expr),
      ldx("DW", R3, R10, slot),
    );
  }
  offset(finalOffset);
}

/**
 * Emits code that loads the scalar at the end of `chain`, starting from the address in `src`,
 * into `dst`: 1, 2, 4 or 8 bytes, zero- or sign-extended to 64 bits by the member's type, and
 * a bitfield shifted and masked into place. A NULL pointer anywhere in the chain yields 0.
 *
 * Clobbers R0-R5 (helper calls); `src` is read before any call, so it may be one of them.
 * `scratch` is an 8-byte stack slot from {@link ProgramBuilder.alloc}; reads may share one.
 *
 * @throws {ChainError} when the member is not a scalar (use {@link emitKernelReadBytes}).
 */
export function emitKernelRead(
  b: ProgramBuilder,
  src: Reg,
  chain: KernelChain,
  dst: Reg,
  scratch: number = b.alloc(8),
): void {
  const f = chain.field;
  const bytes = loadSize(chain);
  if (dst === R10) throw new RangeError("R10 is the read-only frame pointer: choose another dst");
  const read = b.fresh("kread");
  emitWalk(b, src, chain.steps, f.offset, read, () => scratch);
  b.mark(read).emit(st("DW", R10, scratch, 0)).stackPtr(R1, scratch).emit(
    mov64(R2, imm(bytes)),
    noted(call("probe_read_kernel"), chain.expr),
    ldx(SIZE_OF[bytes], dst, R10, scratch),
  );
  emitExtract(b, f, dst);
}

/**
 * Like {@link emitKernelRead}, from a BTF-typed pointer (a `tp_btf` program's context argument,
 * or a pointer loaded from one) with plain loads: the verifier types each one and the kernel
 * turns a fault, NULL on the way included, into 0. No helper calls: only `dst` changes, and it
 * may be `src`.
 *
 * @throws {ChainError} when the member is not a scalar.
 */
export function emitDirectRead(b: ProgramBuilder, src: Reg, chain: KernelChain, dst: Reg): void {
  const f = chain.field;
  const bytes = loadSize(chain);
  let from = src;
  for (const step of chain.steps) {
    b.emit(noted(ldx("DW", dst, from, step.offset), step.expr));
    from = dst;
  }
  b.emit(noted(ldx(SIZE_OF[bytes], dst, from, f.offset), chain.expr));
  emitExtract(b, f, dst);
}

/** The narrowest load covering a scalar member (all of a bitfield's bits). */
function loadSize(chain: KernelChain): number {
  const f = chain.field;
  if (!f.scalar) {
    throw new ChainError(
      chain.expr,
      `it is ${f.typeName}, not an integer or pointer: copy it with emitKernelReadBytes`,
    );
  }
  const bits = f.bitfieldSize ? f.bitOffset + f.bitfieldSize : f.size * 8;
  const bytes = [1, 2, 4, 8].find((n) => n * 8 >= bits);
  if (bytes === undefined) {
    throw new ChainError(chain.expr, `the bitfield spans more than 8 bytes, which is unsupported`);
  }
  return bytes;
}

/** Sign-extends a loaded member, or shifts and masks a bitfield into place, in `dst`. */
function emitExtract(b: ProgramBuilder, f: ChainField, dst: Reg): void {
  // Shift the wanted bits to the top, then back down: a logical shift clears what lay above
  // them, an arithmetic one copies the sign bit down.
  const width = f.bitfieldSize || f.size * 8;
  const left = 64 - (f.bitOffset + width);
  const right = 64 - width;
  // An unsigned whole-member load is already zero-extended by the load itself.
  if (!f.signed && !f.bitfieldSize) return;
  if (left !== 0) b.emit(alu64("LSH", dst, imm(left)));
  if (right !== 0) b.emit(alu64(f.signed ? "ARSH" : "RSH", dst, imm(right)));
}

/**
 * Emits code that copies `size` bytes of the member at the end of `chain`, starting from the
 * address in `src`, to `recordReg + recordOffset` (a ring buffer record, map value or stack).
 * Text members are copied with `bpf_probe_read_kernel_str`, following a `char *` member: the
 * copy stops at the terminator, and the destination is zeroed first so that the bytes after it
 * are always 0 (records stay comparable, e.g. as map keys). Other members are copied verbatim;
 * `size` may be less than the member's size but not more.
 *
 * A NULL pointer anywhere in the chain leaves the destination zeroed: the helper is then given
 * address 0, refuses it, and clears the destination. R0 holds the helper's result (for strings,
 * the bytes copied including the terminator, or a negative errno).
 *
 * Clobbers R0-R5, so `recordReg` must be one of R6-R10. Pointers on the way are fetched through
 * one 8-byte stack slot, `scratch`, allocated when not given and needed.
 *
 * @throws {ChainError} for a bitfield or a `size` larger than a non-pointer member.
 */
export function emitKernelReadBytes(
  b: ProgramBuilder,
  src: Reg,
  chain: KernelChain,
  recordReg: Reg,
  recordOffset: number,
  size: number,
  scratch?: number,
): void {
  const f = chain.field;
  if (recordReg < 6) {
    throw new RangeError(`R${recordReg} is clobbered by helper calls: keep the record in R6-R10`);
  }
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`Cannot copy ${size} bytes of ${chain.expr}: give a positive size`);
  }
  if (f.bitfieldSize) {
    throw new ChainError(chain.expr, "it is a bitfield: read it with emitKernelRead");
  }
  if (f.string !== "pointer" && size > f.size) {
    throw new ChainError(
      chain.expr,
      `it is ${f.typeName} (${f.size} bytes), fewer than the ${size} bytes asked for`,
    );
  }
  const text = f.string !== undefined;
  // A `char *` member is one more pointer to fetch; the text is at offset 0 of its target.
  const steps = f.string === "pointer"
    ? [...chain.steps, { offset: f.offset, type: f.type, expr: chain.expr }]
    : chain.steps;
  if (text) emitZero(b, recordReg, recordOffset, size);
  const read = b.fresh("kread");
  const slot = () => (scratch ??= b.alloc(8));
  emitWalk(b, src, steps, f.string === "pointer" ? 0 : f.offset, read, slot);
  const helper: Helper = text ? "probe_read_kernel_str" : "probe_read_kernel";
  b.mark(read).emit(mov64(R1, recordReg));
  if (recordOffset !== 0) b.emit(alu64("ADD", R1, imm(recordOffset)));
  b.emit(mov64(R2, imm(size)), noted(call(helper), chain.expr));
}

/** Zeroes `size` bytes at `reg + offset` with the widest naturally aligned stores. */
function emitZero(b: ProgramBuilder, reg: Reg, offset: number, size: number): void {
  for (let p = 0; p < size;) {
    const at = offset + p;
    const n = [8, 4, 2, 1].find((n) => at % n === 0 && p + n <= size)!;
    b.emit(st(SIZE_OF[n], reg, at, 0));
    p += n;
  }
}
