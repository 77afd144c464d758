/**
 * Linux native AIO from Deno through `libaio.so.1`: enough to drive real AIO workloads (the
 * aio_latency recipe's demo, tests): a context, iocbs in memory the kernel reads, submit,
 * reap with io_getevents or io_pgetevents.
 *
 * @module
 */

const lib = () =>
  Deno.dlopen("libaio.so.1", {
    io_setup: { parameters: ["i32", "buffer"], result: "i32" },
    io_destroy: { parameters: ["u64"], result: "i32" },
    io_submit: { parameters: ["u64", "i64", "buffer"], result: "i32" },
    io_cancel: { parameters: ["u64", "u64", "buffer"], result: "i32" },
    io_getevents: { parameters: ["u64", "i64", "i64", "buffer", "buffer"], result: "i32" },
    io_pgetevents: {
      parameters: ["u64", "i64", "i64", "buffer", "buffer", "buffer"],
      result: "i32",
    },
  }).symbols;

let symbols: ReturnType<typeof lib> | undefined;

/** libaio's functions; throws a one-line error saying what to install when it is missing. */
export function libaio(): ReturnType<typeof lib> {
  try {
    return symbols ??= lib();
  } catch (e) {
    throw new Error(
      `libaio.so.1 could not be loaded (${(e as Error).message}): apt-get install libaio1`,
    );
  }
}

/** `size` bytes (a multiple of 8) in a buffer V8 keeps off its heap, so its address holds. */
function offHeap(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(Math.max(size, 128)), 0, size);
}

/** IOCB_CMD_PREAD: read `nbytes` at `offset` into `buf`. */
export const PREAD = 0;
/** IOCB_CMD_PWRITE: write `nbytes` from `buf` at `offset`. */
export const PWRITE = 1;
/** IOCB_CMD_POLL: wait until `fd` has the poll events given in `buf` (1n: POLLIN). */
export const POLL = 5;

/** One request to submit. */
export interface Request {
  /** {@link PREAD}, {@link PWRITE} or {@link POLL}. */
  opcode: number;
  /** The file descriptor. */
  fd: number;
  /** Address of the data buffer (for {@link POLL}: the poll events). */
  buf: bigint;
  /** Bytes to transfer (0 for {@link POLL}). */
  nbytes: number;
  /** File offset. */
  offset: number;
  /** Returned with the completion as `data`: the request's identity for the caller. */
  data: bigint;
}

/** A completion reaped: the request's `data`, its iocb's address, and its result. */
export interface AioResult {
  /** The request's `data` (`aio_data`). */
  data: bigint;
  /** The user address of the request's iocb. */
  obj: bigint;
  /** Bytes transferred, or a negative errno. */
  res: number;
  /** A second result, 0 for reads and writes. */
  res2: number;
}

/** How {@link AioContext.reap} waits. */
export interface ReapOptions {
  /** The longest wait, in seconds; undefined: until `min` completions. */
  timeoutSeconds?: number;
  /** Signals blocked while waiting, as a 64-bit mask (io_pgetevents instead of io_getevents). */
  sigmask?: bigint;
}

/** A context with a fixed set of iocbs in memory the kernel reads (their addresses stay). */
export class AioContext implements Disposable {
  /** The kernel's context id (aio_context_t). */
  readonly id: bigint;
  readonly #iocbs: Uint8Array;
  readonly #pointers: BigUint64Array;
  readonly #events: Uint8Array;

  /** A context for at most `depth` requests in flight (io_setup). */
  constructor(depth: number) {
    const ctx = offHeap(8);
    const r = libaio().io_setup(depth, ctx);
    if (r < 0) throw new Error(`io_setup(${depth}) failed: errno ${-r}`);
    this.id = new BigUint64Array(ctx.buffer)[0];
    this.#iocbs = offHeap(64 * depth);
    this.#pointers = new BigUint64Array(offHeap(8 * depth).buffer, 0, depth);
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#iocbs)));
    for (let i = 0; i < depth; i++) this.#pointers[i] = base + BigInt(64 * i);
    this.#events = offHeap(32 * depth);
  }

  /** The user address of iocb slot `i`. */
  iocbAddress(i: number): bigint {
    return this.#pointers[i];
  }

  /** Submits requests in iocb slots 0..n-1; returns how many the kernel took. */
  submit(requests: Request[]): number {
    const v = new DataView(this.#iocbs.buffer);
    requests.forEach((r, i) => {
      const at = 64 * i;
      this.#iocbs.fill(0, at, at + 64);
      v.setBigUint64(at, r.data, true);
      v.setUint16(at + 16, r.opcode, true);
      v.setUint32(at + 20, r.fd, true);
      v.setBigUint64(at + 24, r.buf, true);
      v.setBigUint64(at + 32, BigInt(r.nbytes), true);
      v.setBigInt64(at + 40, BigInt(r.offset), true);
    });
    const n = libaio().io_submit(
      this.id,
      BigInt(requests.length),
      new Uint8Array(this.#pointers.buffer),
    );
    if (n < 0) throw new Error(`io_submit failed: errno ${-n}`);
    return n;
  }

  /** Cancels the request in iocb slot `i`; returns io_cancel's result (-EINPROGRESS: queued). */
  cancel(i: number): number {
    return libaio().io_cancel(this.id, this.#pointers[i], offHeap(32));
  }

  /**
   * Reaps between `min` and `max` completions with io_getevents (or io_pgetevents when a
   * signal mask is given), waiting at most `timeoutSeconds` (forever when undefined).
   */
  reap(min: number, max: number, options: ReapOptions = {}): AioResult[] {
    let timeout: Uint8Array | null = null;
    if (options.timeoutSeconds !== undefined) {
      timeout = offHeap(16);
      const ts = new BigInt64Array(timeout.buffer);
      ts[0] = BigInt(Math.floor(options.timeoutSeconds));
      ts[1] = BigInt(Math.round((options.timeoutSeconds % 1) * 1e9));
    }
    const n = options.sigmask === undefined
      ? libaio().io_getevents(this.id, BigInt(min), BigInt(max), this.#events, timeout)
      : this.#pgetevents(min, max, timeout, options.sigmask);
    if (n < 0) throw new Error(`io_getevents failed: errno ${-n}`);
    const v = new DataView(this.#events.buffer);
    return Array.from({ length: n }, (_, i) => ({
      data: v.getBigUint64(32 * i, true),
      obj: v.getBigUint64(32 * i + 8, true),
      res: Number(v.getBigInt64(32 * i + 16, true)),
      res2: Number(v.getBigInt64(32 * i + 24, true)),
    }));
  }

  #pgetevents(min: number, max: number, timeout: Uint8Array | null, mask: bigint): number {
    // libaio takes the sigset_t itself and builds the kernel's struct __aio_sigset around it.
    const sigmask = offHeap(8);
    new BigUint64Array(sigmask.buffer)[0] = mask;
    return libaio().io_pgetevents(
      this.id,
      BigInt(min),
      BigInt(max),
      this.#events,
      timeout,
      sigmask,
    );
  }

  /** Destroys the context (io_destroy), cancelling what is still in flight. */
  [Symbol.dispose](): void {
    libaio().io_destroy(this.id);
  }
}

const libc = () =>
  Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    pipe: { parameters: ["buffer"], result: "i32" },
  }).symbols;
let libcSymbols: ReturnType<typeof libc> | undefined;

const O_RDWR = 2, O_CREAT = 0o100, O_DIRECT = 0o40000;

/** How {@link Fd} opens its file (always read-write). */
export interface FdOptions {
  /** O_DIRECT: I/O bypasses the page cache (buffers, offsets and sizes aligned to 4096). */
  direct?: boolean;
  /** O_CREAT: create the file when it does not exist. */
  create?: boolean;
}

/** An open file descriptor (Deno's files hide theirs), closed on dispose. */
export class Fd implements Disposable {
  /** The descriptor. */
  readonly fd: number;
  /** Opens `path` read-write; throws when it cannot (O_DIRECT refused, no such file). */
  constructor(path: string, options: FdOptions = {}) {
    libcSymbols ??= libc();
    const flags = O_RDWR | (options.direct ? O_DIRECT : 0) | (options.create ? O_CREAT : 0);
    this.fd = libcSymbols.open(new TextEncoder().encode(path + "\0"), flags, 0o600);
    if (this.fd < 0) {
      throw new Error(`Cannot open ${path}${options.direct ? " with O_DIRECT" : ""}`);
    }
  }
  /** Closes the descriptor. */
  [Symbol.dispose](): void {
    libcSymbols!.close(this.fd);
  }
}

/** A pipe's two fds (for requests that stay in flight: a poll on an empty pipe), closed on dispose. */
export class Pipe implements Disposable {
  /** The read end. */
  readonly read: number;
  /** The write end. */
  readonly write: number;
  /** Opens a pipe (pipe(2)). */
  constructor() {
    libcSymbols ??= libc();
    const fds = new Int32Array(2);
    if (libcSymbols.pipe(new Uint8Array(fds.buffer)) < 0) throw new Error("pipe() failed");
    [this.read, this.write] = fds;
  }
  /** Closes both ends. */
  [Symbol.dispose](): void {
    libcSymbols!.close(this.read);
    libcSymbols!.close(this.write);
  }
}

/** Memory for a request's data, and its address for {@link Request.buf}. */
export interface AlignedBuffer {
  /** The memory, `size` bytes starting at `address`. */
  bytes: Uint8Array;
  /** Its user address, a multiple of 4096. */
  address: bigint;
}

/**
 * A buffer of `size` bytes aligned to 4096 (for O_DIRECT) and its address. Keep `bytes`
 * referenced while a request uses it: the address is only good while the memory lives.
 */
export function alignedBuffer(size: number): AlignedBuffer {
  const raw = new Uint8Array(size + 4096);
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(raw)));
  const skip = Number((4096n - (base % 4096n)) % 4096n);
  return { bytes: raw.subarray(skip, skip + size), address: base + BigInt(skip) };
}
