/**
 * Where io:done finds a request's issue time (runtime/providers/io/start_slots.ts, a slot table
 * of runtime/codegen/slot_table.ts): the issue
 * and completion code run once each with BPF_PROG_TEST_RUN on chosen request addresses and
 * times, two of them sharing a slot, against the maps themselves.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap, type MapSpec } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { ProgramBuilder } from "../../runtime/codegen/builder.ts";
import {
  emitLatency,
  emitSaveStart,
  SLOTS,
  startMaps,
} from "../../runtime/providers/io/start_slots.ts";
import { slotOf as tableSlotOf, tagOf } from "../../runtime/codegen/slot_table.ts";
import { testRun } from "../fixtures/bpf.ts";

const { R1, R6, R7, R9, R10 } = a;

/** The slot of request address `rq`, as the programs choose it. */
const slotOf = (rq: bigint) => tableSlotOf([rq], SLOTS);

/** A u64 little-endian. */
const u64 = (v: bigint) => new Uint8Array(new BigUint64Array([BigInt.asUintN(64, v)]).buffer);
const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);

Deno.test("a request's issue time is found at its completion, in its slot or past a request holding it", () => {
  const specs: MapSpec[] = [];
  const names = startMaps({ map: (spec) => (specs.push(spec), spec.name) });
  const out: MapSpec = { name: "out", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 };
  const created = [...specs, out].map((s) => BpfMap.create(s));
  using _maps = { [Symbol.dispose]: () => created.forEach((m) => m[Symbol.dispose]()) };
  const maps = new Map(created.map((m, i) => [[...specs, out][i].name, m]));
  // Context: the request's address, then the time the program takes as its own.
  const load = (name: string, body: (b: ProgramBuilder) => void) => {
    const b = new ProgramBuilder();
    b.emit(a.mov64(R6, R1), a.ldx("DW", R9, R6, 8));
    body(b);
    b.mark("out").ret();
    return Program.load({
      name,
      type: "raw_tracepoint",
      probe: `test:${name}`,
      maps,
      instructions: b.items,
    });
  };
  using issue = load("slots_issue", (b) => emitSaveStart(b, names));
  using complete = load("slots_done", (b) => {
    const key = b.alloc(8);
    b.emit(a.st("DW", R10, key, 0)).lookup("out", key, "out").emit(a.mov64(R7, a.R0));
    emitLatency(b, names, 0);
  });
  const issued = (rq: bigint, time: bigint) => equal(testRun(issue, [rq, time]), 0);
  const latency = (rq: bigint, time: bigint) => {
    equal(testRun(complete, [rq, time]), 0);
    return new DataView(maps.get("out")!.lookup(u32(0))!.buffer).getBigInt64(0, true);
  };
  const slot = (rq: bigint) => {
    const v = new DataView(maps.get(names.slots)!.lookup(u32(slotOf(rq)))!.buffer);
    return [v.getBigUint64(0, true), v.getBigUint64(8, true), v.getBigUint64(16, true)];
  };
  const spilled = (rq: bigint) => maps.get(names.spilled)!.lookup(u64(rq));

  const x = 0xffff_8880_1234_5600n;
  let y = x + 64n;
  while (slotOf(y) !== slotOf(x)) y += 64n;
  const w = x + 64n;
  ok(slotOf(w) !== slotOf(x));

  issued(x, 100n);
  issued(y, 200n);
  issued(w, 300n);
  equal(slot(x), [tagOf([x]), x, 100n], "x holds its slot");
  equal(spilled(y), u64(200n), "y, whose slot x holds, is in the map");
  equal(spilled(x), undefined);
  equal(latency(y, 1000n), 800n);
  equal(latency(x, 1000n), 900n);
  equal(latency(w, 1000n), 700n);
  equal([latency(x, 2000n), latency(y, 2000n), latency(w, 2000n)], [-1n, -1n, -1n], "forgotten");
  equal(slot(x), [0n, x, 100n], "released");
  equal(spilled(y), undefined, "deleted");

  // Issued again before completing: the later issue counts, in the slot it holds.
  issued(x, 100n);
  issued(x, 150n);
  equal(latency(x, 1000n), 850n);
  // A released slot is the next request's.
  issued(y, 10n);
  equal(slot(y), [tagOf([y]), y, 10n]);
  equal(latency(y, 25n), 15n);
});
