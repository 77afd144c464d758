/**
 * BpfMap against the running kernel: every map type the runtime creates, batch reads, per-CPU
 * sums, errors that name the map, and that closing really frees the kernel objects.
 *
 * Needs root (or CAP_BPF) and libbpf.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { BpfMap, cpuCount, UpdateFlag } from "../../bpf/map.ts";
import { BpfError } from "../../bpf/errors.ts";
import { libbpf } from "../../bpf/ffi.ts";
import { bpftoolNames, pollNames } from "../fixtures/bpf.ts";

/**
 * Every map this file creates has a name with this prefix, so leftovers can be found; with the
 * pid in base 36 the longest name here still fits the kernel's 15 characters.
 */
const PREFIX = `m${Deno.pid.toString(36)}_`;

function u32(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64(n: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

function readU32(b: Uint8Array, at = 0): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
}

function readU64(b: Uint8Array, at = 0): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(at, true);
}

type Libbpf = ReturnType<typeof libbpf>;

/** A per-CPU value buffer holding `values[cpu]` (u64) at the start of each CPU's slot. */
function perCpu(map: BpfMap, values: (cpu: number) => bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(map.valueBytes);
  const stride = map.valueBytes / cpuCount();
  const view = new DataView(out.buffer);
  for (let cpu = 0; cpu < cpuCount(); cpu++) view.setBigUint64(cpu * stride, values(cpu), true);
  return out;
}

/** Names of the kernel's maps that start with {@link PREFIX}, polled until none or 2 s. */
async function leftoverMaps(): Promise<string[]> {
  const names = await pollNames("map", (all) => !all.some((n) => n.startsWith(PREFIX)));
  return names.filter((n) => n.startsWith(PREFIX));
}

Deno.test("BpfMap hash: update, lookup, delete and keys", () => {
  const map = BpfMap.create({
    name: `${PREFIX}hash`,
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
  });
  try {
    assertEquals(map.valueBytes, 8);
    assertEquals(map.lookup(u32(1)), undefined);
    for (let k = 1; k <= 5; k++) map.update(u32(k), u64(BigInt(k) * 100n));
    assertEquals(readU64(map.lookup(u32(3))!), 300n);
    map.update(u32(3), u64(301n), UpdateFlag.exist);
    assertEquals(readU64(map.lookup(u32(3))!), 301n);
    try {
      map.update(u32(3), u64(0n), UpdateFlag.noexist);
      assert(false, "noexist update of an existing key succeeded");
    } catch (e) {
      assert(e instanceof BpfError);
      assertEquals(e.errno, 17); // EEXIST
      assert(e.message.includes(`'${PREFIX}hash'`), e.message);
    }
    assertEquals(map.delete(u32(2)), true);
    assertEquals(map.delete(u32(2)), false);
    assertEquals(map.lookup(u32(2)), undefined);
    const keys = [...map.keys()].map((k) => readU32(k)).sort((a, b) => a - b);
    assertEquals(keys, [1, 3, 4, 5]);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap array: zero-filled slots, update, no delete, keys are the indexes", () => {
  const map = BpfMap.create({
    name: `${PREFIX}arr`,
    type: "array",
    keySize: 4,
    valueSize: 16,
    maxEntries: 4,
  });
  try {
    assertEquals(map.lookup(u32(2)), new Uint8Array(16));
    assertEquals(map.lookup(u32(4)), undefined); // out of range reads as absent
    const value = new Uint8Array(16).map((_, i) => i + 1);
    map.update(u32(2), value);
    assertEquals(map.lookup(u32(2)), value);
    // Array slots always exist: the kernel refuses to delete them.
    throws(() => map.delete(u32(2)), (e) => e instanceof BpfError && e.errno === 22);
    assertEquals([...map.keys()].map((k) => readU32(k)), [0, 1, 2, 3]);
    const entries = map.entries();
    assertEquals(entries.length, 4);
    assertEquals(entries.find(([k]) => readU32(k) === 2)?.[1], value);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap percpu_array: one slot per CPU, summed with BpfMap.sumPerCpu", () => {
  const map = BpfMap.create({
    name: `${PREFIX}pca`,
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 2,
  });
  try {
    assertEquals(map.valueBytes, 8 * cpuCount());
    const zero = map.lookup(u32(0))!;
    assertEquals(zero.length, map.valueBytes);
    assertEquals(BpfMap.sumPerCpu(zero, 8), 0n);
    map.update(u32(1), perCpu(map, (cpu) => BigInt(cpu + 1) * 10n));
    const n = BigInt(cpuCount());
    assertEquals(BpfMap.sumPerCpu(map.lookup(u32(1))!, 8), 10n * n * (n + 1n) / 2n);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap percpu_hash: values are padded to 8 bytes per CPU; sumPerCpu at an offset", () => {
  // 12-byte values occupy 16 bytes per CPU in lookups.
  const map = BpfMap.create({
    name: `${PREFIX}pch`,
    type: "percpu_hash",
    keySize: 8,
    valueSize: 12,
    maxEntries: 8,
  });
  try {
    assertEquals(map.valueBytes, 16 * cpuCount());
    const value = new Uint8Array(map.valueBytes);
    const view = new DataView(value.buffer);
    for (let cpu = 0; cpu < cpuCount(); cpu++) {
      view.setBigUint64(cpu * 16, 1000n + BigInt(cpu), true);
      view.setUint32(cpu * 16 + 8, 7, true);
    }
    map.update(u64(42n), value);
    const back = map.lookup(u64(42n))!;
    const n = BigInt(cpuCount());
    assertEquals(BpfMap.sumPerCpu(back, 16), 1000n * n + n * (n - 1n) / 2n);
    // The u32 at offset 8, read as a u64, takes in the 4 padding bytes: zero as written above.
    assertEquals(BpfMap.sumPerCpu(back, 16, 8), 7n * n);
    assertEquals(map.delete(u64(42n)), true);
    assertEquals(map.lookup(u64(42n)), undefined);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap lru_hash: never holds more than maxEntries and keeps the newest key", () => {
  const max = 64;
  const map = BpfMap.create({
    name: `${PREFIX}lru`,
    type: "lru_hash",
    keySize: 4,
    valueSize: 4,
    maxEntries: max,
  });
  try {
    for (let k = 0; k < max * 4; k++) map.update(u32(k), u32(k * 2));
    const keys = [...map.keys()].map((k) => readU32(k));
    assert(keys.length > 0 && keys.length <= max, `${keys.length} keys in an LRU of ${max}`);
    assertEquals(readU32(map.lookup(u32(max * 4 - 1))!), (max * 4 - 1) * 2);
    for (const k of keys) assertEquals(readU32(map.lookup(u32(k))!), k * 2);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap.entries() reads a hash map of 1000 entries in batches, each exactly once", () => {
  const count = 1000;
  const map = BpfMap.create({
    name: `${PREFIX}big`,
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1024,
  });
  // The symbols object is plain and writable; only its type says read-only.
  const lib = libbpf() as { -readonly [K in keyof Libbpf]: Libbpf[K] };
  const batchCall = lib.bpf_map_lookup_batch;
  const nextKeyCall = lib.bpf_map_get_next_key;
  let batches = 0;
  let nextKeys = 0;
  try {
    for (let k = 0; k < count; k++) map.update(u32(k), u64(BigInt(k) * 3n + 1n));
    // Count the calls, to prove entries() took the batch path rather than its key-by-key fallback.
    lib.bpf_map_lookup_batch = (...args: Parameters<typeof batchCall>) => {
      batches++;
      return batchCall(...args);
    };
    lib.bpf_map_get_next_key = (...args: Parameters<typeof nextKeyCall>) => {
      nextKeys++;
      return nextKeyCall(...args);
    };
    for (const batch of [256, 64, 1000, 4096]) {
      batches = 0;
      const entries = map.entries(batch);
      assertEquals(nextKeys, 0);
      assert(batches >= Math.ceil(count / batch), `${batches} batch calls for batch ${batch}`);
      assertEquals(entries.length, count);
      const seen = new Map<number, bigint>();
      for (const [k, v] of entries) {
        assertEquals(k.length, 4);
        assertEquals(v.length, 8);
        seen.set(readU32(k), readU64(v));
      }
      assertEquals(seen.size, count, `duplicate keys with batch ${batch}`);
      for (let k = 0; k < count; k++) assertEquals(seen.get(k), BigInt(k) * 3n + 1n);
    }
  } finally {
    lib.bpf_map_lookup_batch = batchCall;
    lib.bpf_map_get_next_key = nextKeyCall;
    map.close();
  }
});

Deno.test("BpfMap.entries() of an empty hash map is empty", () => {
  const map = BpfMap.create({
    name: `${PREFIX}empty`,
    type: "hash",
    keySize: 4,
    valueSize: 4,
    maxEntries: 8,
  });
  try {
    assertEquals(map.entries(), []);
  } finally {
    map.close();
  }
});

Deno.test("BpfMap.create() of an impossible map throws a BpfError that names the map", () => {
  for (
    const spec of [
      { suffix: "bad0", type: "hash", keySize: 0, valueSize: 8, maxEntries: 8 },
      { suffix: "bad1", type: "array", keySize: 8, valueSize: 8, maxEntries: 8 },
      { suffix: "bad2", type: "percpu_hash", keySize: 4, valueSize: 8, maxEntries: 0 },
    ] as const
  ) {
    const name = `${PREFIX}${spec.suffix}`;
    try {
      BpfMap.create({ ...spec, name }).close();
      assert(false, `the kernel accepted ${JSON.stringify(spec)}`);
    } catch (e) {
      assert(e instanceof BpfError, String(e));
      assertEquals(e.errno, 22); // EINVAL
      assert(e.message.includes(`${spec.type} map '${name}'`), e.message);
      assert(e.message.includes("EINVAL"), e.message);
      assert(!e.message.includes("\n"), "the message is one line");
    }
  }
});

Deno.test("BpfMap.close() frees the kernel map: none of this file's maps remain", async () => {
  const map = BpfMap.create({
    name: `${PREFIX}gone`,
    type: "array",
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
  });
  const listed = bpftoolNames("map").filter((n) => n === `${PREFIX}gone`);
  assertEquals(listed.length, 1, "the open map is listed by bpftool");
  map.close();
  map.close(); // closing twice is harmless
  assertEquals(await leftoverMaps(), []);
});
