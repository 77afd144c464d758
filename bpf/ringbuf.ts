/**
 * A BPF ring buffer read directly from its memory mapping, in TypeScript.
 *
 * The kernel maps three regions of a `BPF_MAP_TYPE_RINGBUF`: the consumer position (one page,
 * read-write), the producer position (one page, read-only), and the data area twice in a row
 * (read-only), so a record that wraps around the end is still contiguous. Draining is plain
 * memory reads over typed arrays: no FFI call and no callback per record. Waiting for data is
 * one `epoll_wait` run off the main thread.
 *
 * Record header (8 bytes): `u32 len` with bit 31 = still being written (BUSY) and bit 30 =
 * discarded, then `u32 pg_off`. Records are 8-byte aligned.
 *
 * @module
 */
import { errno, libc } from "./ffi.ts";
import { BpfError } from "./errors.ts";
import { BpfMap } from "./map.ts";

const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
const EPOLL_CTL_ADD = 1, EPOLLIN = 1, EPOLL_CLOEXEC = 0o2000000;
const BUSY = 0x8000_0000, DISCARD = 0x4000_0000, HEADER = 8;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Receives one record: its bytes are `data[offset, offset + length)`, valid only during the call. */
export type RecordHandler = (data: DataView, offset: number, length: number) => void;

let pageSizeCache = 0;
function pageSize(): number {
  pageSizeCache ||= Number(libc().sysconf(30)); // _SC_PAGESIZE
  return pageSizeCache;
}

function mmap(fd: number, length: number, prot: number, offset: number): Deno.PointerObject {
  const p = libc().mmap(null, BigInt(length), prot, MAP_SHARED, fd, BigInt(offset));
  if (p === null || BigInt(Deno.UnsafePointer.value(p)) === MAP_FAILED) {
    throw new BpfError("map the ring buffer into memory", errno());
  }
  return p;
}

/** The consumer side of a ring buffer map. */
export class RingBuffer implements Disposable {
  readonly map: BpfMap;
  readonly size: number;
  readonly #consumerPtr: Deno.PointerObject;
  readonly #producerPtr: Deno.PointerObject;
  readonly #consumer: BigUint64Array;
  readonly #producer: BigUint64Array;
  readonly #data: DataView;
  readonly #mask: number;
  readonly #epfd: number;
  readonly #events = new Uint8Array(12);
  #closed = false;
  /** Records read since creation. */
  records = 0;

  /**
   * Creates a ring buffer map of `size` bytes (a power of two, at least a page) and maps it.
   */
  constructor(name: string, size: number) {
    const page = pageSize();
    if (size < page || (size & (size - 1)) !== 0) {
      throw new RangeError(`Ring buffer size ${size} must be a power of two >= ${page}`);
    }
    this.size = size;
    this.#mask = size - 1;
    this.map = BpfMap.create({ name, type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: size });
    try {
      this.#consumerPtr = mmap(this.map.fd, page, PROT_READ | PROT_WRITE, 0);
      this.#producerPtr = mmap(this.map.fd, page + 2 * size, PROT_READ, page);
      this.#consumer = new BigUint64Array(
        Deno.UnsafePointerView.getArrayBuffer(this.#consumerPtr, 8),
      );
      this.#producer = new BigUint64Array(
        Deno.UnsafePointerView.getArrayBuffer(this.#producerPtr, 8),
      );
      this.#data = new DataView(
        Deno.UnsafePointerView.getArrayBuffer(this.#producerPtr, 2 * size, page),
      );
      this.#epfd = libc().epoll_create1(EPOLL_CLOEXEC);
      if (this.#epfd < 0) throw new BpfError("create an epoll instance", errno());
      const ev = new DataView(this.#events.buffer);
      ev.setUint32(0, EPOLLIN, true);
      ev.setUint32(4, this.map.fd, true);
      if (libc().epoll_ctl(this.#epfd, EPOLL_CTL_ADD, this.map.fd, this.#events) < 0) {
        throw new BpfError("watch the ring buffer with epoll", errno());
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Bytes written by producers and not yet consumed. */
  pending(): number {
    return Number(this.#producer[0] - this.#consumer[0]);
  }

  /**
   * Reads every complete record now in the buffer, calling `handler` on each, and frees their
   * space. Returns the number of records read. Stops early at a record still being written.
   */
  drain(handler: RecordHandler): number {
    const data = this.#data;
    const mask = this.#mask;
    let cons = this.#consumer[0];
    const prod = this.#producer[0];
    let n = 0;
    // Positions only grow; their difference fits a double, and so does masking the low bits.
    let pos = Number(cons & BigInt(mask));
    let left = Number(prod - cons);
    try {
      while (left > 0) {
        const len = data.getUint32(pos, true);
        if (len & BUSY) break;
        const length = len & 0x3fff_ffff;
        const step = (length + HEADER + 7) & ~7;
        const at = pos + HEADER;
        // Step past the record before its handler runs: a handler that throws does not get the
        // same record again (which could starve the producer); its memory stays valid until the
        // consumer position is stored below.
        left -= step;
        cons += BigInt(step);
        pos = (pos + step) & mask;
        if (!(len & DISCARD)) {
          n++;
          handler(data, at, length);
        }
      }
    } finally {
      // Free what was read even when a handler throws, so the producer is never starved.
      this.#consumer[0] = cons;
      this.records += n;
    }
    return n;
  }

  /**
   * Waits up to `timeoutMs` for data (in a worker thread, so the event loop keeps running).
   * Returns true when there may be data to drain.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.pending() > 0) return true;
    const out = new Uint8Array(12);
    const r = await libc().epoll_wait(this.#epfd, out, 1, timeoutMs);
    return r > 0 || this.pending() > 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const page = pageSize();
    if (this.#consumerPtr) libc().munmap(this.#consumerPtr, BigInt(page));
    if (this.#producerPtr) libc().munmap(this.#producerPtr, BigInt(page + 2 * this.size));
    if (this.#epfd > 0) libc().close(this.#epfd);
    this.map.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
