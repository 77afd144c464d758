/**
 * The arguments and return value of a probed function, read from the registers the probe
 * saw (`struct pt_regs`, the context of kprobes and uprobes) by the calling convention of the
 * architecture: x86_64's System V (rdi, rsi, rdx, rcx, r8, r9; rax), arm64's AAPCS64 (x0-x5;
 * x0). Offsets come from the kernel's BTF; another architecture is a one-line error.
 *
 * @module
 */
import { ldx, R0, R6, R7, stx } from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field, stringFrom } from "../../codegen/fields.ts";
import { memberOffset } from "../../codegen/struct_read.ts";

/** Argument registers, then the return value's, as `struct pt_regs` member paths. */
const CONVENTIONS: Record<string, { args: string[]; ret: string }> = {
  x86_64: { args: ["di", "si", "dx", "cx", "r8", "r9"], ret: "ax" },
  aarch64: {
    args: ["regs[0]", "regs[1]", "regs[2]", "regs[3]", "regs[4]", "regs[5]"],
    ret: "regs[0]",
  },
};

/** A function's first six integer or pointer arguments, as raw 64-bit registers. */
export interface RegisterArguments {
  /** The first argument. */
  arg0: bigint;
  /** The second argument. */
  arg1: bigint;
  /** The third argument. */
  arg2: bigint;
  /** The fourth argument. */
  arg3: bigint;
  /** The fifth argument. */
  arg4: bigint;
  /** The sixth argument. */
  arg5: bigint;
}

/** How many arguments a probe reads: `arg0` to `arg5`. */
export const ARGUMENTS = 6;

/** The calling convention of this machine; throws on one the project does not know. */
function convention(): { args: string[]; ret: string } {
  const found = CONVENTIONS[Deno.build.arch];
  if (!found) {
    throw new Error(
      `function arguments are read for ${Object.keys(CONVENTIONS).join(" and ")} only, ` +
        `not ${Deno.build.arch}; use tracepoints instead`,
    );
  }
  return found;
}

/** A field of the raw 64-bit register at `pt_regs` path `member`, as a bigint. */
function register(name: string, member: string): EventField {
  const off = memberOffset("pt_regs", member);
  return field([name], { type: "pointer" }, (b: ProgramBuilder, dst: number) => {
    b.emit(ldx("DW", R0, R6, off), stx("DW", R7, dst, R0));
  });
}

/** `arg0` to `arg5`: the registers of a function's first six integer or pointer arguments. */
export function argumentFields(): EventField[] {
  return convention().args.map((member, i) => register(`arg${i}`, member));
}

/**
 * `str0`..: the NUL-terminated user strings the arguments at `indexes` point to, read when the
 * probe fires (up to `size` bytes).
 */
export function argumentStrings(indexes: readonly number[], size: number): EventField[] {
  const members = convention().args;
  return indexes.map((i) =>
    field(
      [`str${i}`],
      { type: "string", size },
      stringFrom("ctx", memberOffset("pt_regs", members[i]), "user", size),
    )
  );
}

/** `retval`: the register of a function's integer or pointer return value. */
export function returnField(): EventField {
  return register("retval", convention().ret);
}
