/**
 * The argument types of system calls, by name, as `syscall.on("NAME:entry")` handlers see them
 * in `e.args`: the running kernel's where a script brought in the file `probe types` writes,
 * else the repository's baseline (baseline_types.ts, which names the kernel it was read from),
 * else loosely typed.
 *
 * @module
 */
import type { BaselineSyscallArgs } from "./baseline_types.ts";

/**
 * System call arguments of the kernel a script traces: empty here, and filled by module
 * augmentation from the declaration file `probe types` writes (`declare module "…/mod.ts" {
 * interface KernelSyscallArgs { … } }`). An interface of its own, not {@link SyscallArgs}: a
 * kernel whose `openat` differs from the baseline's would make merged declarations conflict.
 */
// deno-lint-ignore no-empty-interface
export interface KernelSyscallArgs {}

/**
 * The arguments of each system call, by name ("openat"): {@link KernelSyscallArgs} where
 * `probe types` wrote them, else the baseline's. Any other name is a `Record<string, unknown>`
 * (the index signature), so a script may trace a syscall the baseline does not type.
 */
export interface SyscallArgs
  extends Omit<BaselineSyscallArgs, keyof KernelSyscallArgs>, KernelSyscallArgs {
  /** Any other system call's arguments, loosely typed. */
  [syscall: string]: Record<string, unknown>;
}
