import { deepStrictEqual as equal, throws } from "node:assert/strict";
import { chars, decode, encode, struct, u32, u64 } from "../../bpf/codec.ts";
import { BpfMap, cpuCount, TypedMap } from "../../bpf/map.ts";

Deno.test("struct() codec round-trips a record of fields", () => {
  const c = struct<{ pid: number; comm: string; ns: bigint }>({
    pid: { offset: 0, codec: u32 },
    comm: { offset: 4, codec: chars(16) },
    ns: { offset: 24, codec: u64 },
  }, 32);
  const v = { pid: 42, comm: "perl", ns: 1n << 60n };
  equal(decode(c, encode(c, v)), v);
});

Deno.test("TypedMap gives a kernel hash map typed keys and values", () => {
  using map = BpfMap.create({
    name: "t_typed",
    type: "hash",
    keySize: 16,
    valueSize: 8,
    maxEntries: 8,
  });
  const m = new TypedMap(map, chars(16), u64);
  m.set("cat", 3n);
  m.set("dd", 1n << 40n);
  equal(m.get("cat"), 3n);
  equal(m.get("missing"), undefined);
  equal(new Map(m.entries().map(([k, v]) => [k, v[0]])), new Map([["cat", 3n], ["dd", 1n << 40n]]));
  equal(m.delete("cat"), true);
  equal(m.get("cat"), undefined);
});

Deno.test("TypedMap over a per-CPU array gives one value per CPU", () => {
  using map = BpfMap.create({
    name: "t_typed_pc",
    type: "percpu_array",
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
  });
  const m = new TypedMap(map, u32, u32);
  equal(m.perCpu(0), new Array(cpuCount()).fill(0));
});

Deno.test("TypedMap refuses codecs that do not fit the map", () => {
  using map = BpfMap.create({
    name: "t_typed_bad",
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  throws(() => new TypedMap(map, u64, u64), /do not fit map 't_typed_bad'/);
});
