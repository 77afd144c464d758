/**
 * The processes a session may signal: the command it started and those of its descendants that
 * are still its descendants. A pid in the kernel's follow map may have exited and been reused
 * by an unrelated process, so each is held by a pidfd first, then checked through /proc to
 * descend from the command, and signalled through that pidfd: a pid reused after the check
 * cannot be hit, since the pidfd names one process.
 *
 * @module
 */
import { closeFd, errno, libc } from "../bpf/ffi.ts";

const SYS_PIDFD_OPEN = 434n; // x86_64
const SYS_PIDFD_SEND_SIGNAL = 424n;
const SIGKILL = 9n;
/** Longer parent chains than this are not followed (a loop in a racing /proc read). */
const MAX_DEPTH = 4096;

/** The parent of `pid` from /proc, or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The comm in parentheses may hold spaces and parentheses: fields follow the last ")".
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** True when `ancestor` is on the parent chain of `pid` (not `pid` itself). */
export function descendsFrom(pid: number, ancestor: number): boolean {
  let p = parentOf(pid);
  for (let i = 0; p !== undefined && p > 0 && i < MAX_DEPTH; i++) {
    if (p === ancestor) return true;
    p = parentOf(p);
  }
  return false;
}

/**
 * Sends SIGKILL to each of `pids` that still descends from `root` (held by a pidfd while
 * checked); returns the pids signalled. The others, gone or no longer descendants (reparented,
 * or a pid reused by another process), are left alone.
 */
export function killDescendants(pids: readonly number[], root: number): number[] {
  const held: Array<[number, number]> = [];
  for (const pid of pids) {
    if (pid === root || pid <= 0) continue;
    const fd = Number(libc().syscall(SYS_PIDFD_OPEN, BigInt(pid), 0n, 0n, 0n, 0n));
    if (fd >= 0) held.push([pid, fd]);
  }
  const killed: number[] = [];
  try {
    // Checked before any is signalled: a killed parent would orphan its children.
    const mine = held.filter(([pid]) => descendsFrom(pid, root));
    for (const [pid, fd] of mine) {
      const r = libc().syscall(SYS_PIDFD_SEND_SIGNAL, BigInt(fd), SIGKILL, 0n, 0n, 0n);
      if (r === 0n) killed.push(pid);
      else if (errno() !== 3) throw new Error(`cannot signal process ${pid}: errno ${errno()}`);
    }
  } finally {
    for (const [, fd] of held) closeFd(fd);
  }
  return killed;
}

/** The largest pid Linux can give (`PID_MAX_LIMIT` on 64-bit). */
const PID_MAX_LIMIT = 4_194_304;

/** A `pid` or `command` option that cannot be traced: what was wrong, in one line. */
export class TargetError extends TypeError {
  /** `message`: the option and what is wrong with its target, in one line. */
  constructor(message: string) {
    super(message);
    this.name = "TargetError";
  }
}

/**
 * Checks a session's targets before anything loads: pids are integers from 1 to 4194304 of
 * processes that exist, and `pid` and `command` are not given together.
 */
export function checkTargets(pids: readonly unknown[], command: unknown): void {
  if (pids.length && command !== undefined) {
    throw new TargetError("give a pid or a command to trace, not both");
  }
  for (const pid of pids) {
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid < 1 || pid > PID_MAX_LIMIT) {
      throw new TargetError(`pid '${pid}' is not a process id (an integer from 1 to 4194304)`);
    }
    if (parentOf(pid) === undefined) throw new TargetError(`pid ${pid}: no such process`);
  }
}

/**
 * The `pid` processes of a session, each held by a pidfd from the start, so that a pid reused
 * after its process exited is not taken for it: the session ends when none is left.
 */
export class PidWatch implements Disposable {
  readonly #fds: number[] = [];

  constructor(pids: readonly number[]) {
    for (const pid of pids) {
      const fd = Number(libc().syscall(SYS_PIDFD_OPEN, BigInt(pid), 0n, 0n, 0n, 0n));
      if (fd >= 0) this.#fds.push(fd);
    }
  }

  /** True while one of the processes still runs (signal 0 through its pidfd finds it). */
  anyAlive(): boolean {
    return this.#fds.some((fd) =>
      libc().syscall(SYS_PIDFD_SEND_SIGNAL, BigInt(fd), 0n, 0n, 0n, 0n) === 0n || errno() !== 3
    );
  }

  [Symbol.dispose](): void {
    while (this.#fds.length) closeFd(this.#fds.pop()!);
  }
}
