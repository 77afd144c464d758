/**
 * Slot tables (runtime/codegen/slot_table.ts) with keys of three words, as AIO's: put and take
 * run with BPF_PROG_TEST_RUN on chosen keys, against the maps themselves. Two tables' worth of
 * collisions are forced with a table of two slots and room for two spilled items.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap, type MapSpec } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { ProgramBuilder } from "../../runtime/codegen/builder.ts";
import {
  emitPut,
  emitTake,
  slotOf,
  slotTable,
  tableItems,
} from "../../runtime/codegen/slot_table.ts";
import { testRun } from "../fixtures/bpf.ts";

const { R0, R1, R6, R7, R10 } = a;
const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);

/** A table of two slots, its programs, and the counters they count in. */
function harness() {
  const specs: MapSpec[] = [];
  const table = slotTable((spec) => (specs.push(spec), spec.name), "t", {
    keySize: 24,
    valueSize: 16,
    count: 2,
    spilled: 2,
  });
  const out: MapSpec = { name: "out", type: "array", keySize: 4, valueSize: 16, maxEntries: 1 };
  const counters: MapSpec = {
    name: "counters",
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 2,
  };
  const all = [...specs, out, counters];
  const created = all.map((s) => BpfMap.create(s));
  const maps = new Map(created.map((m, i) => [all[i].name, m]));
  // Context: three key words, then two value words.
  const load = (name: string, body: (b: ProgramBuilder, key: number) => void) => {
    const b = new ProgramBuilder();
    const key = b.alloc(24);
    b.emit(a.mov64(R6, R1));
    for (let w = 0; w < 24; w += 8) b.emit(a.ldx("DW", R0, R6, w), a.stx("DW", R10, key + w, R0));
    body(b, key);
    b.mark("out").ret();
    return Program.load({
      name,
      type: "raw_tracepoint",
      probe: `test:${name}`,
      maps,
      instructions: b.items,
    });
  };
  const put = load("slot_put", (b, key) => {
    const value = b.alloc(16);
    for (let w = 0; w < 16; w += 8) {
      b.emit(a.ldx("DW", R0, R6, 24 + w), a.stx("DW", R10, value + w, R0));
    }
    emitPut(b, table, key, value, { replaced: ["counters", 0], lost: ["counters", 1] });
  });
  const take = load("slot_take", (b, key) => {
    const at = b.alloc(8);
    b.emit(a.st("DW", R10, at, 0)).lookup("out", at, "out").emit(a.mov64(R7, R0));
    b.emit(a.st("DW", R7, 0, -1), a.st("DW", R7, 8, -1));
    emitTake(b, table, key, (base, off) => {
      for (let w = 0; w < 16; w += 8) {
        b.emit(a.ldx("DW", R1, base, off + w), a.stx("DW", R7, w, R1));
      }
    }, "out");
  });
  // Per CPU: the test runs may run on any.
  const counter = (i: number) => BpfMap.sumPerCpu(maps.get("counters")!.lookup(u32(i))!, 8);
  return {
    table,
    maps,
    put: (k: bigint[], v: [bigint, bigint]) => equal(testRun(put, [...k, ...v]), 0),
    take: (k: bigint[]) => {
      equal(testRun(take, [...k, 0n, 0n]), 0);
      const view = new DataView(maps.get("out")!.lookup(u32(0))!.buffer);
      return [view.getBigInt64(0, true), view.getBigInt64(8, true)];
    },
    replaced: () => counter(0),
    lost: () => counter(1),
    [Symbol.dispose]: () => {
      put.close();
      take.close();
      created.forEach((m) => m.close());
    },
  };
}

Deno.test("a slot table keeps every item whatever the collisions, and counts what it cannot", () => {
  using t = harness();
  // Keys differing in one word each, the same slot for several of them.
  const keys = Array.from(
    { length: 6 },
    (_, i) => [1000n, 7n, 0x7f00_0000_1000n + 64n * BigInt(i)],
  );
  const first = keys.filter((k) => slotOf(k, 2) === slotOf(keys[0], 2));
  ok(first.length >= 2, "two keys share a slot");
  keys.slice(0, 4).forEach((k, i) => t.put(k, [BigInt(i), 10n * BigInt(i)]));
  // Two slots and two spilled: all four are there, each once.
  equal(tableItems(t.table, t.maps).length, 4);
  equal(t.lost(), 0n);
  t.put(keys[4], [4n, 40n]);
  equal(t.lost(), 1n, "a fifth has no room: counted lost");
  // A key put again before it was taken: replaced, counted, the later value kept.
  t.put(keys[1], [11n, 110n]);
  equal(t.replaced(), 1n);
  equal(t.take(keys[1]), [11n, 110n]);
  for (const i of [0, 2, 3]) equal(t.take(keys[i]), [BigInt(i), 10n * BigInt(i)], `key ${i}`);
  equal(t.take(keys[4]), [-1n, -1n], "the lost one is not there");
  equal(t.take(keys[0]), [-1n, -1n], "taken once");
  equal(tableItems(t.table, t.maps).length, 0, "nothing left behind");
  // A key of another process with the same other words is another item.
  t.put([1001n, 7n, keys[0][2]], [5n, 50n]);
  equal(t.take(keys[0]), [-1n, -1n]);
  equal(t.take([1001n, 7n, keys[0][2]]), [5n, 50n]);
});

Deno.test("tableItems lists claimed slots and spilled items, and removes each", () => {
  using t = harness();
  const keys = [[1n, 2n, 3n], [1n, 2n, 4n], [1n, 2n, 5n]];
  keys.forEach((k) => t.put(k, [9n, 9n]));
  const items = tableItems(t.table, t.maps);
  const words = (bytes: Uint8Array) => [...new BigUint64Array(bytes.slice().buffer)];
  equal(items.map((i) => words(i.key)).sort((x, y) => Number(x[2] - y[2])), keys);
  items.forEach((i) => i.remove());
  equal(tableItems(t.table, t.maps).length, 0);
  for (const k of keys) equal(t.take(k), [-1n, -1n], "removed");
  // A removed slot is free again.
  t.put(keys[0], [1n, 2n]);
  equal(t.take(keys[0]), [1n, 2n]);
});
