/**
 * `emitEach`: a body run through the `loop` helper, whose callback is a subprogram the kernel
 * takes only with BTF describing it. Run with BPF_PROG_TEST_RUN for counts far beyond what an
 * unrolled or bounded loop could verify.
 *
 * @module
 */
import { deepStrictEqual as equal, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { ProgramBuilder, StackOverflowError } from "../../runtime/codegen/builder.ts";
import { emitEach } from "../../runtime/codegen/probe_program.ts";
import { testRun } from "../fixtures/bpf.ts";

const { R0, R1, R6 } = a;
const MAX = 1 << 20;
/** Counter slots: rounds run, the sum of the indices seen, rounds beyond MAX. */
const ROUNDS = 0, INDEX_SUM = 1, OVERFLOW = 2;

/** A program that runs ctx[0] rounds, each counting itself and adding its index. */
function loopProgram(counts: BpfMap): Program {
  const b = new ProgramBuilder();
  b.emit(a.mov64(R6, R1), a.mov64(a.R9, a.imm(0)));
  emitEach(b, {}, {
    count: (b) => b.emit(a.ldx("DW", R0, R6, 0)),
    max: MAX,
    overflow: { map: "counts", index: OVERFLOW },
  }, (b) => {
    b.increment("counts", ROUNDS);
    b.increment("counts", INDEX_SUM, b.loopIndex!);
  });
  b.ret();
  return Program.load({
    name: "loop_test",
    type: "raw_tracepoint",
    probe: "test:loop",
    maps: new Map([["counts", counts]]),
    instructions: b.items,
  });
}

function counters(map: BpfMap): bigint[] {
  return [ROUNDS, INDEX_SUM, OVERFLOW].map((i) => {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    return new DataView(map.lookup(key)!.buffer).getBigUint64(0, true);
  });
}

Deno.test("a loop callback runs every round, with its index, and counts the rounds beyond its limit", () => {
  for (const n of [0, 1, 7, 4096, MAX, MAX + 5, -3]) {
    using counts = BpfMap.create({
      name: "counts",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 3,
    });
    using prog = loopProgram(counts);
    testRun(prog, [BigInt(n)]);
    const ran = BigInt(Math.min(Math.max(n, 0), MAX));
    equal(counters(counts), [ran, (ran * (ran - 1n)) / 2n, BigInt(Math.max(n - MAX, 0))], `n=${n}`);
  }
});

Deno.test("a callback's frame shares the 512 stack bytes with its caller's", () => {
  const b = new ProgramBuilder();
  b.alloc(400);
  throws(() => b.callback((cb) => cb.alloc(100)), StackOverflowError);
  const c = new ProgramBuilder();
  c.callback((cb) => cb.alloc(400));
  throws(() => c.alloc(100), StackOverflowError);
  c.alloc(64);
});

Deno.test("a subprogram's address is its distance in the immediate, and is listed by name", () => {
  const items = [
    a.ldFunc(a.R2, "cb"),
    a.mov64(R0, a.imm(0)),
    a.exit(),
    a.label("cb"),
    a.mov64(R0, a.imm(1)),
    a.exit(),
  ];
  const linked = a.link(items);
  equal(a.subprogramSlots(linked), [4]);
  const code = a.encode(linked, () => 0);
  const v = new DataView(code.buffer);
  equal([v.getUint8(1), v.getInt16(2, true), v.getInt32(4, true)], [(4 << 4) | 2, 0, 3]);
  equal(a.formatInstruction(linked.instructions[0], "4 <cb>"), "r2 = 4 <cb> ll");
});
