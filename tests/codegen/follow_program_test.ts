/**
 * The follow program on its own, run with BPF_PROG_TEST_RUN: a child of a traced process
 * joins the pid set, and one that cannot (the set is full) is counted, on every kernel (map
 * operations return an int, which kernels before 6.4 leave zero-extended in R0).
 *
 * @module
 */
import { deepStrictEqual as equal } from "node:assert/strict";
import { BpfMap } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { followProgram } from "../../runtime/codegen/follow_program.ts";
import { testRun } from "../fixtures/bpf.ts";

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

Deno.test("the follow program adds a traced parent's child, and counts one the full set refuses", () => {
  for (const capacity of [2, 1]) {
    using pids = BpfMap.create({
      name: "pids",
      type: "hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: capacity,
    });
    using counters = BpfMap.create({
      name: "counters",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    pids.update(u32(Deno.pid), new Uint8Array(8), 0n);
    using prog = Program.load({
      name: "follow_test",
      type: "raw_tracepoint",
      probe: "test:follow",
      maps: new Map([["pids", pids], ["counters", counters]]),
      // The child's pid is the context's second word (a fork record's child_pid, here).
      instructions: followProgram("pids", 8, "counters", 0),
    });
    const child = 4_000_000;
    testRun(prog, [0n, BigInt(child)]);
    const lost = new DataView(counters.lookup(u32(0))!.buffer).getBigUint64(0, true);
    const joined = pids.lookup(u32(child)) !== undefined;
    equal([joined, lost], capacity === 2 ? [true, 0n] : [false, 1n], `capacity ${capacity}`);
  }
});
