/**
 * Reads of kernel struct members named as C names them ("bi_bdev->bd_dev" from a `struct
 * bio *`), resolved once per (struct, path) against the running kernel's BTF; the building
 * block of providers that walk kernel objects. NULL anywhere on the way reads as 0.
 *
 * @module
 */
import type { Reg } from "../../bpf/asm/mod.ts";
import { Btf } from "../../bpf/btf.ts";
import type { ProgramBuilder } from "./builder.ts";
import {
  emitDirectRead,
  emitKernelRead,
  emitKernelReadBytes,
  type KernelChain,
  resolveChain,
} from "./kernel_read.ts";

const chains = new Map<string, KernelChain>();
/** The stack slot for the pointers a read fetches on its way. */
function scratchOf(b: ProgramBuilder): number {
  return b.slot("kernel read");
}

/** The resolved chain of `path` from an address of `struct type`. */
export function memberChain(type: string, path: string): KernelChain {
  const id = `${type} ${path}`;
  let chain = chains.get(id);
  if (!chain) {
    const btf = Btf.vmlinux();
    const root = btf.find(type, "struct");
    if (!root) throw new Error(`The kernel's BTF has no struct ${type}`);
    chain = resolveChain(btf, root.id, path, type);
    chains.set(id, chain);
  }
  return chain;
}

/** `dst = src->path` for the address of a `struct type` in `src`; clobbers R0-R5. */
export function readMember(
  b: ProgramBuilder,
  src: Reg,
  type: string,
  path: string,
  dst: Reg,
): void {
  emitKernelRead(b, src, memberChain(type, path), dst, scratchOf(b));
}

/**
 * `dst = src->path` for a BTF-typed `struct type *` in `src` (a `tp_btf` program's argument, or
 * a pointer member loaded from one): plain loads, no helper calls; only `dst` changes.
 */
export function loadMember(
  b: ProgramBuilder,
  src: Reg,
  type: string,
  path: string,
  dst: Reg,
): void {
  emitDirectRead(b, src, memberChain(type, path), dst);
}

/** Copies the text (or bytes) at `src->path` to the record at R7 + `dst`; clobbers R0-R5. */
export function readMemberBytes(
  b: ProgramBuilder,
  src: Reg,
  type: string,
  path: string,
  recordReg: Reg,
  dst: number,
  size: number,
): void {
  emitKernelReadBytes(b, src, memberChain(type, path), recordReg, dst, size, scratchOf(b));
}

/** Byte offset of a member within its struct (no pointers on the way). */
export function memberOffset(type: string, path: string): number {
  const chain = memberChain(type, path);
  if (chain.steps.length) throw new Error(`${type}.${path} follows a pointer; it has no offset`);
  return chain.field.offset;
}

/** Size of `struct type`. */
export function structSize(type: string): number {
  const btf = Btf.vmlinux();
  return btf.sizeOf(btf.find(type, "struct")!.id);
}
