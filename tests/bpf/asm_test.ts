import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";

const { R0, R1, R2, R6, R10 } = a;

const sample: a.Item[] = [
  a.ldMap(R1, "events"),
  a.mov64(R2, a.imm(16)),
  a.call("ringbuf_reserve"),
  a.jmp("JEQ", R0, a.imm(0), "out"),
  a.mov64(R6, R0),
  a.ldx("DW", R1, R6, 16),
  a.stx("W", R10, -8, R1),
  a.st("B", R10, -1, 7),
  a.alu32("AND", R1, a.imm(0xff)),
  a.jmp32("JSGT", R1, R2, "out"),
  a.atomicAdd("DW", R6, 0, R1),
  a.ldImm64(R2, 0x1_0000_0001n),
  a.label("out"),
  a.mov64(R0, a.imm(0)),
  a.exit(),
];

Deno.test("formatProgram() prints the verifier's syntax with slots and labels", () => {
  const listing = a.formatProgram(a.link(sample), 5);
  assertEquals(
    listing,
    [
      "    0: r1 = map[events] ll",
      "    2: r2 = 16",
      "    3: call ringbuf_reserve#131",
      "    4: if r0 == 0 goto 14 <out>",
      ">   5: r6 = r0",
      "    6: r1 = *(u64 *)(r6 +16)",
      "    7: *(u32 *)(r10 -8) = r1",
      "    8: *(u8 *)(r10 -1) = 7",
      "    9: w1 &= 255",
      "   10: if w1 s> w2 goto 14 <out>",
      "   11: lock *(u64 *)(r6 +0) += r1",
      "   12: r2 = 0x100000001 ll",
      "out:",
      "   14: r0 = 0",
      "   15: exit",
    ].join("\n"),
  );
});

Deno.test("encode() resolves jumps, map fds and 64-bit immediates", () => {
  const bytes = a.encode(a.link(sample), (name) => (name === "events" ? 42 : -1));
  const v = new DataView(bytes.buffer);
  assertEquals(bytes.length, 16 * 8);
  // ld_imm64 with a map fd: src = BPF_PSEUDO_MAP_FD
  assertEquals(v.getUint8(0), 0x18);
  assertEquals(v.getUint8(1), (1 << 4) | 1);
  assertEquals(v.getInt32(4, true), 42);
  // jump at slot 4 to slot 14: off = 14 - 4 - 1
  assertEquals(v.getUint8(4 * 8), 0x15);
  assertEquals(v.getInt16(4 * 8 + 2, true), 9);
  // wide immediate split over two slots
  assertEquals(v.getInt32(12 * 8 + 4, true), 1);
  assertEquals(v.getInt32(13 * 8 + 4, true), 1);
  // atomic add: opcode STX|ATOMIC|DW, imm = BPF_ADD
  assertEquals(v.getUint8(11 * 8), 0xdb);
});

Deno.test("encode() rejects a jump to an undefined label", () => {
  const linked = a.link([a.ja("nowhere"), a.exit()]);
  throws(() => a.encode(linked, () => 0), /undefined label 'nowhere'/);
});

Deno.test("imm() rejects values that need ldImm64", () => {
  throws(() => a.mov64(R1, a.imm(2 ** 40)), /ldImm64/);
});

Deno.test("link() drops instructions no path reaches (the verifier refuses them)", () => {
  const linked = a.link([
    a.mov64(a.R0, a.imm(0)),
    a.ja("out"),
    a.mov64(a.R0, a.imm(1)), // dead
    a.label("out"),
    a.exit(),
  ]);
  assertEquals(linked.instructions.length, 3);
  assertEquals(linked.slots, [0, 1, 2]);
  assertEquals(a.formatProgram(linked).includes("r0 = 1"), false);
});
