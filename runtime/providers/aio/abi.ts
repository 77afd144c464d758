/**
 * Linux native AIO's user-space ABI (x86_64): `struct iocb`, `struct io_event`, timespecs
 * and signal sets, their layouts for the kernel side and their decoding for JavaScript, the
 * way strace shows them.
 *
 * @module
 */

/** `struct iocb`: 64 bytes. */
export const IOCB = {
  size: 64,
  data: 0,
  rwFlags: 12,
  opcode: 16,
  fd: 20,
  buf: 24,
  nbytes: 32,
  offset: 40,
  flags: 56,
  resfd: 60,
} as const;

/** `struct io_event`: 32 bytes. */
export const IO_EVENT = { size: 32, data: 0, obj: 8, res: 16, res2: 24 } as const;

/** `IOCB_CMD_*` by number. */
export const OPCODES: Readonly<Record<number, string>> = {
  0: "PREAD",
  1: "PWRITE",
  2: "FSYNC",
  3: "FDSYNC",
  5: "POLL",
  6: "NOOP",
  7: "PREADV",
  8: "PWRITEV",
};

/** An opcode's name, or its number when unknown. */
export function opcodeName(op: number): string {
  return OPCODES[op] ?? `OP_${op}`;
}

/** A submitted iocb, decoded. */
export interface Iocb {
  /** The iocb's user address. */
  iocb: bigint;
  /** `aio_lio_opcode` by name: "PREAD", "PWRITE", "FSYNC", "POLL". */
  opcode: string;
  /** `aio_fildes`. */
  fd: number;
  /** The file the fd names (from /proc), or "" when it is gone. */
  path: string;
  /** `aio_buf`: the data's user address (for POLL, the events). */
  buf: bigint;
  /** `aio_nbytes`. */
  nbytes: number;
  /** `aio_offset`. */
  offset: number;
  /** `aio_data`: the caller's own value, returned with the completion. */
  data: bigint;
  /** `aio_rw_flags` (RWF_*). */
  rw_flags: number;
  /** `aio_flags` (IOCB_FLAG_*). */
  flags: number;
  /** `aio_resfd`: the eventfd signalled on completion (with IOCB_FLAG_RESFD). */
  resfd: number;
}

/** A reaped completion, decoded. */
export interface IoEvent {
  /** The request's `aio_data`. */
  data: bigint;
  /** The iocb's user address. */
  obj: bigint;
  /** The result: bytes transferred, or a negative errno. */
  res: number;
  /** A second result, 0 for reads and writes. */
  res2: number;
}

/** A signal mask decoded: the names of its signals, and its size in bytes. */
export interface SigSet {
  /** The signals' names ("SIGINT", "SIGRTMIN+1"). */
  mask: string[];
  /** The size the caller gave, in bytes. */
  size: number;
}

const SIGNALS = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/** The names of the signals in a 64-bit mask (bit n-1 is signal n; 34+ are SIGRTMIN+k). */
export function signalNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let n = 1; n <= 64; n++) {
    if (!((mask >> BigInt(n - 1)) & 1n)) continue;
    names.push(n <= SIGNALS.length ? SIGNALS[n - 1] : n >= 34 ? `SIGRTMIN+${n - 34}` : `SIG${n}`);
  }
  return names;
}

const paths = new Map<string, string>();

/** The path of a process's fd, cached (see {@link forgetPaths}); "" when never readable. */
export function fdPath(pid: number, fd: number): string {
  const key = `${pid}:${fd}`;
  let path = paths.get(key);
  if (path === undefined) {
    try {
      path = Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      path = "";
    }
    paths.set(key, path);
  }
  return path;
}

/** Most fd paths kept; past it the cache starts over. */
const MAX_PATHS = 65536;

/**
 * Reads the cached fd paths again, as fds are reused. One that can no longer be read (the fd
 * closed, the process gone) keeps its last path: events decoded after the process exited still
 * name its file.
 */
export function forgetPaths(): void {
  if (paths.size > MAX_PATHS) paths.clear();
  for (const key of paths.keys()) {
    const [pid, fd] = key.split(":");
    try {
      paths.set(key, Deno.readLinkSync(`/proc/${pid}/fd/${fd}`));
    } catch { /* gone: the last path stays */ }
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes the kernel's copy of submitted iocbs: u32 count, u32 pid, then per iocb its
 * address (8 bytes) and the 64-byte struct.
 */
export function decodeIocbs(bytes: Uint8Array): Iocb[] {
  const v = view(bytes);
  const count = v.getUint32(0, true);
  const pid = v.getUint32(4, true);
  const out: Iocb[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * (8 + IOCB.size);
    if (at + 8 + IOCB.size > bytes.byteLength) break;
    const s = at + 8;
    const fd = v.getUint32(s + IOCB.fd, true);
    out.push({
      iocb: v.getBigUint64(at, true),
      opcode: opcodeName(v.getUint16(s + IOCB.opcode, true)),
      fd,
      path: fdPath(pid, fd),
      buf: v.getBigUint64(s + IOCB.buf, true),
      nbytes: Number(v.getBigUint64(s + IOCB.nbytes, true)),
      offset: Number(v.getBigInt64(s + IOCB.offset, true)),
      data: v.getBigUint64(s + IOCB.data, true),
      rw_flags: v.getUint32(s + IOCB.rwFlags, true),
      flags: v.getUint32(s + IOCB.flags, true),
      resfd: v.getUint32(s + IOCB.resfd, true),
    });
  }
  return out;
}

/** Decodes the kernel's copy of reaped io_events: u32 count, u32 pad, then the structs. */
export function decodeEvents(bytes: Uint8Array): IoEvent[] {
  const v = view(bytes);
  const count = v.getUint32(0, true);
  const out: IoEvent[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * IO_EVENT.size;
    if (at + IO_EVENT.size > bytes.byteLength) break;
    out.push({
      data: v.getBigUint64(at + IO_EVENT.data, true),
      obj: v.getBigUint64(at + IO_EVENT.obj, true),
      res: Number(v.getBigInt64(at + IO_EVENT.res, true)),
      res2: Number(v.getBigInt64(at + IO_EVENT.res2, true)),
    });
  }
  return out;
}

/** A timespec copy (u64 present, then seconds and nanoseconds) as seconds, or null (none). */
export function decodeTimespec(bytes: Uint8Array): number | null {
  const v = view(bytes);
  if (v.getBigUint64(0, true) === 0n) return null;
  return Number(v.getBigInt64(8, true)) + Number(v.getBigInt64(16, true)) / 1e9;
}

/** A `struct __aio_sigset` copy (u64 present, u64 size, u64 mask), or null (none). */
export function decodeSigset(bytes: Uint8Array): SigSet | null {
  const v = view(bytes);
  if (v.getBigUint64(0, true) === 0n) return null;
  return { mask: signalNames(v.getBigUint64(16, true)), size: Number(v.getBigUint64(8, true)) };
}
