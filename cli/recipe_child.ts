/**
 * What `probe run` tells the recipe it starts, through its environment: probe's pid, so that
 * the recipe ends with probe (it asks the kernel for SIGTERM, on which a session stops and
 * unloads, when that parent dies, even by SIGKILL), and whether to only explain.
 *
 * @module
 */
import { libc } from "../bpf/ffi.ts";

/** The environment variable by which `probe` names itself to the recipe it starts. */
export const PARENT_ENV = "TSPROBE_PARENT_PID";

/** Set by `probe run --explain` for the recipe it starts. */
export const EXPLAIN_ENV = "TSPROBE_EXPLAIN";

const SYS_PRCTL = 157n; // x86_64
const SYS_GETPPID = 110n;
const PR_SET_PDEATHSIG = 1n;
const SIGTERM = 15n;

/**
 * Ties this process's life to the `probe` named by {@link PARENT_ENV}. False when that parent
 * is already gone (this process was orphaned before it could ask).
 */
export function followParent(): boolean {
  const parent = Deno.env.get(PARENT_ENV);
  if (parent === undefined) return true;
  libc().syscall(SYS_PRCTL, PR_SET_PDEATHSIG, SIGTERM, 0n, 0n, 0n);
  return String(libc().syscall(SYS_GETPPID, 0n, 0n, 0n, 0n, 0n)) === parent;
}
