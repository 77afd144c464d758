/**
 * BPF maps: the kernel-side tables that programs and the runtime share.
 *
 * A {@link BpfMap} owns its fd and closes it in one place ({@link BpfMap.close} or `using`).
 * Keys and values are raw bytes here; {@link Codec}s give them types.
 *
 * @module
 */
import { closeFd, cstr, libbpf } from "./ffi.ts";
import { check } from "./errors.ts";
import { type Codec, decode, encode } from "./codec.ts";

/** Map types the runtime creates (`enum bpf_map_type`). */
export const MapType = {
  hash: 1,
  array: 2,
  percpu_hash: 5,
  percpu_array: 6,
  lru_hash: 9,
  lru_percpu_hash: 10,
  stack_trace: 7,
  ringbuf: 27,
} as const;
export type MapType = keyof typeof MapType;

/** What a map is created from. */
export interface MapSpec {
  /** Object name shown by `bpftool map list` (at most 15 characters kept). */
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
}

/** `BPF_F_NO_PREALLOC`: hash maps allocate entries on insert instead of at creation. */
export const BPF_F_NO_PREALLOC = 1;

/** Update flags of `bpf_map_update_elem`. */
export const UpdateFlag = { any: 0n, noexist: 1n, exist: 2n } as const;

let possibleCpus: number | undefined;

/** Number of possible CPUs: the stride of per-CPU map values. */
export function cpuCount(): number {
  if (possibleCpus !== undefined) return possibleCpus;
  const text = Deno.readTextFileSync("/sys/devices/system/cpu/possible").trim();
  possibleCpus = 0;
  for (const part of text.split(",")) {
    const [a, b] = part.split("-").map(Number);
    possibleCpus = Math.max(possibleCpus, (b ?? a) + 1);
  }
  return possibleCpus;
}

function isPerCpu(type: MapType): boolean {
  return type === "percpu_hash" || type === "percpu_array" || type === "lru_percpu_hash";
}

/** A map created in the kernel. */
/** Entries read together: `count` keys end to end in `keys`, their values so in `values`. */
export interface MapBatch {
  keys: Uint8Array<ArrayBuffer>;
  values: Uint8Array<ArrayBuffer>;
  count: number;
}

export class BpfMap implements Disposable {
  readonly fd: number;
  readonly spec: Readonly<MapSpec>;
  /** Bytes a lookup returns: `valueSize`, or 8-byte-rounded `valueSize` times CPUs for per-CPU maps. */
  readonly valueBytes: number;
  #closed = false;

  private constructor(fd: number, spec: MapSpec) {
    this.fd = fd;
    this.spec = spec;
    this.valueBytes = isPerCpu(spec.type)
      ? Math.ceil(spec.valueSize / 8) * 8 * cpuCount()
      : spec.valueSize;
  }

  /** Creates a map; throws {@link BpfError} naming it when the kernel refuses. */
  static create(spec: MapSpec): BpfMap {
    const opts = new Uint8Array(48);
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, 48n, true); // sz
    view.setUint32(28, spec.flags ?? 0, true); // map_flags
    const fd = check(
      libbpf().bpf_map_create(
        MapType[spec.type],
        cstr(spec.name.slice(0, 15)),
        spec.keySize,
        spec.valueSize,
        spec.maxEntries,
        opts,
      ),
      `create ${spec.type} map '${spec.name}'`,
    );
    return new BpfMap(fd, { ...spec });
  }

  get name(): string {
    return this.spec.name;
  }

  /** The value stored under `key`, or undefined. Per-CPU maps return all CPUs' values. */
  lookup(key: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | undefined {
    const value = new Uint8Array(this.valueBytes);
    const r = libbpf().bpf_map_lookup_elem(this.fd, key, value);
    if (r === -2) return undefined;
    check(r, `look up in map '${this.name}'`);
    return value;
  }

  /** Stores `value` under `key`. */
  update(
    key: Uint8Array<ArrayBuffer>,
    value: Uint8Array<ArrayBuffer>,
    flags: bigint = UpdateFlag.any,
  ) {
    check(
      libbpf().bpf_map_update_elem(this.fd, key, value, flags),
      `update map '${this.name}'`,
    );
  }

  /** Removes `key`; returns false when it was not there. */
  delete(key: Uint8Array<ArrayBuffer>): boolean {
    const r = libbpf().bpf_map_delete_elem(this.fd, key);
    if (r === -2) return false;
    check(r, `delete from map '${this.name}'`);
    return true;
  }

  /** Every key, in the kernel's iteration order. */
  *keys(): Generator<Uint8Array<ArrayBuffer>> {
    let prev: Uint8Array<ArrayBuffer> | null = null;
    while (true) {
      const next = new Uint8Array(this.spec.keySize);
      const r = libbpf().bpf_map_get_next_key(this.fd, prev, next);
      if (r === -2) return;
      check(r, `iterate map '${this.name}'`);
      yield next;
      prev = next;
    }
  }

  /**
   * Every entry, read with `BPF_MAP_LOOKUP_BATCH` (one syscall per `batch` entries) where the
   * map type allows it, else key by key. With `remove`, each entry is deleted as it is read
   * (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`), so no update falls between reading and clearing.
   */
  entries(
    batch = 256,
    remove = false,
  ): Array<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> {
    const { keySize } = this.spec;
    const out: Array<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> = [];
    for (const b of this.batches(batch, remove)) {
      for (let i = 0; i < b.count; i++) {
        out.push([
          b.keys.subarray(i * keySize, (i + 1) * keySize),
          b.values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes),
        ]);
      }
    }
    return out;
  }

  /**
   * Every entry as {@link entries} reads them, a batch at a time: entry `i` of a batch is at
   * `i * keySize` of its keys and `i * valueBytes` of its values. A reader of thousands of
   * entries decodes them in place, without a view per entry (most of a scrape's garbage).
   */
  batches(batch = 256, remove = false): MapBatch[] {
    if (this.spec.type === "ringbuf") return [];
    try {
      return this.#batches(batch, remove);
    } catch {
      const out: MapBatch[] = [];
      for (const k of [...this.keys()]) {
        const v = this.lookup(k);
        if (v) out.push({ keys: k, values: v, count: 1 });
        if (remove) this.delete(k);
      }
      return out;
    }
  }

  #batches(batch: number, remove: boolean): MapBatch[] {
    const { keySize } = this.spec;
    const out: MapBatch[] = [];
    const inBatch = new Uint8Array(Math.max(keySize, 8));
    const outBatch = new Uint8Array(Math.max(keySize, 8));
    const count = new Uint32Array(1);
    const opts = new Uint8Array(24);
    new DataView(opts.buffer).setBigUint64(0, 24n, true);
    let first = true;
    while (true) {
      const keys = new Uint8Array(keySize * batch);
      const values = new Uint8Array(this.valueBytes * batch);
      count[0] = batch;
      const read = remove
        ? libbpf().bpf_map_lookup_and_delete_batch
        : libbpf().bpf_map_lookup_batch;
      const r = read(
        this.fd,
        first ? null : inBatch,
        outBatch,
        keys,
        values,
        new Uint8Array(count.buffer),
        opts,
      );
      if (r < 0 && r !== -2) check(r, `batch-read map '${this.name}'`);
      if (count[0] > 0) out.push({ keys, values, count: count[0] });
      if (r === -2) return out; // ENOENT: the last batch was read
      inBatch.set(outBatch);
      first = false;
    }
  }

  /** Sums a per-CPU map's u64 value at `offset` over every CPU. */
  static sumPerCpu(value: Uint8Array<ArrayBuffer>, stride: number, offset = 0): bigint {
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    let sum = 0n;
    for (let p = offset; p + 8 <= value.byteLength; p += stride) sum += view.getBigUint64(p, true);
    return sum;
  }

  /** Closes the fd; the kernel frees the map once no program holds it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A map seen through codecs: keys and values are TypeScript values. Per-CPU maps give one value
 * per possible CPU.
 */
export class TypedMap<K, V> {
  constructor(readonly map: BpfMap, readonly key: Codec<K>, readonly value: Codec<V>) {
    if (key.size !== map.spec.keySize || value.size !== map.spec.valueSize) {
      throw new TypeError(
        `Codecs of ${key.size}/${value.size} bytes do not fit map '${map.name}' ` +
          `(key ${map.spec.keySize}, value ${map.spec.valueSize} bytes)`,
      );
    }
  }

  #values(bytes: Uint8Array): V[] {
    const stride = this.map.valueBytes === this.map.spec.valueSize
      ? bytes.length
      : Math.ceil(this.map.spec.valueSize / 8) * 8;
    const out: V[] = [];
    for (let p = 0; p < bytes.length; p += stride) out.push(decode(this.value, bytes, p));
    return out;
  }

  /** The value under `key` (for per-CPU maps, CPU 0's; see {@link perCpu}). */
  get(key: K): V | undefined {
    const bytes = this.map.lookup(encode(this.key, key));
    return bytes && this.#values(bytes)[0];
  }

  /** Every CPU's value under `key` (a one-element array for ordinary maps). */
  perCpu(key: K): V[] | undefined {
    const bytes = this.map.lookup(encode(this.key, key));
    return bytes && this.#values(bytes);
  }

  set(key: K, value: V, flags: bigint = UpdateFlag.any): void {
    this.map.update(encode(this.key, key), encode(this.value, value), flags);
  }

  delete(key: K): boolean {
    return this.map.delete(encode(this.key, key));
  }

  /** All entries, read in batches; per-CPU values as arrays. */
  entries(): Array<[K, V[]]> {
    return this.map.entries().map(([k, v]) => [decode(this.key, k), this.#values(v)]);
  }
}
