/**
 * Program.load against the running kernel: verifier rejections become a VerifierError that a
 * person can act on, and a loaded program lives exactly as long as its fd.
 *
 * Needs root (or CAP_BPF) and libbpf.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import {
  Program,
  type ProgramSpec,
  rejectedInstruction,
  VerifierError,
} from "../../bpf/program.ts";
import { BpfMap } from "../../bpf/map.ts";
import { countAndReturn, pollNames } from "../fixtures/bpf.ts";

const { R0, R1, R5, R7, R10 } = a;

/** Prefix of every object name in this file (pid in base 36 keeps names within 15 characters). */
const PREFIX = `p${Deno.pid.toString(36)}_`;

function spec(name: string, instructions: a.Item[], maps = new Map<string, BpfMap>()): ProgramSpec {
  return {
    name: `${PREFIX}${name}`,
    type: "tracepoint",
    probe: `test:${name}`,
    instructions,
    maps,
  };
}

/** Loads a program the verifier must reject, and returns the error. */
function rejected(s: ProgramSpec): VerifierError {
  try {
    Program.load(s).close();
  } catch (e) {
    if (e instanceof VerifierError) return e;
    throw e;
  }
  throw new Error(`the verifier accepted ${s.probe}`);
}

Deno.test("Program.load() of a read of an uninitialized register throws VerifierError", () => {
  const e = rejected(spec("uninit_reg", [a.mov64(R0, R5), a.exit()]));
  assertEquals(e.probe, "test:uninit_reg");
  assertEquals(e.instruction, 0);
  assertEquals(e.errno, 13); // EACCES
  assert(e.log.includes("R5 !read_ok"), e.log);
  assert(e.message.includes("'test:uninit_reg'"), e.message);
  assert(e.message.includes("at instruction 0"), e.message);
  assert(e.message.includes(">   0: r0 = r5"), e.message);
  assert(e.message.includes("R5 !read_ok"), e.message);
  assertEquals(e.listing, [">   0: r0 = r5", "    1: exit"].join("\n"));
});

Deno.test("VerifierError marks the rejected slot counting the two slots of a 64-bit load", () => {
  const e = rejected(spec("slot", [
    a.ldImm64(R1, 5n),
    a.mov64(R0, R1),
    a.alu64("ADD", R0, R7), // R7 was never written: slot 3, after the two-slot ld_imm64
    a.exit(),
  ]));
  assertEquals(e.instruction, 3);
  assert(e.log.includes("R7 !read_ok"), e.log);
  const marked = e.listing.split("\n").filter((l) => l.startsWith(">"));
  assertEquals(marked, [">   3: r0 += r7"]);
  // The listing's slot numbers are the verifier's: its log shows the same text at slot 3.
  assert(e.log.includes("3: (0f) r0 += r7"), e.log);
  assert(e.message.includes(e.listing), e.message);
});

Deno.test("Program.load() of a stack read out of bounds names the stack in the error", () => {
  const e = rejected(spec("stack", [
    a.mov64(R0, a.imm(0)),
    a.ldx("DW", R1, R10, -520), // below the 512-byte stack
    a.exit(),
  ]));
  assertEquals(e.instruction, 1);
  assert(e.message.includes("invalid read from stack"), e.message);
  assert(e.message.includes(">   1: r1 = *(u64 *)(r10 -520)"), e.message);
  assert(e.message.includes("'test:stack'"), e.message);
});

Deno.test("VerifierError without an instruction in the log still carries the listing and log", () => {
  // No exit: rejected before any instruction is walked, so the log names no slot.
  const e = rejected(spec("noexit", [a.mov64(R0, a.imm(0))]));
  assertEquals(e.instruction, undefined);
  assert(!e.listing.includes(">"), e.listing);
  assert(e.log.includes("last insn is not an exit or jmp"), e.log);
  assert(e.message.includes("last insn is not an exit or jmp"), e.message);
});

Deno.test("rejectedInstruction() finds the last instruction line of a verifier log", () => {
  const log = [
    "func#0 @0",
    "0: R1=ctx() R10=fp0",
    "0: (bf) r6 = r1                       ; R1=ctx() R6_w=ctx()",
    "1: (85) call bpf_get_current_pid_tgid#14      ; R0_w=scalar()",
    "2: (55) if r0 != 0x4d2 goto pc+3      ; R0_w=1234",
    "3: (b7) r0 = 0                        ; R0_w=0",
    "4: (95) exit",
    "",
    "from 2 to 6: R0_w=scalar() R6_w=ctx() R10=fp0",
    "6: R0_w=scalar() R6_w=ctx() R10=fp0",
    "6: (79) r1 = *(u64 *)(r10 -8)",
    "invalid read from stack R10 off=-8 size=8",
    "processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0",
  ].join("\n");
  assertEquals(rejectedInstruction(log), 6);
  // State lines ("6: R0_w=...") and branch lines ("from 2 to 6") are not instructions.
  assertEquals(rejectedInstruction("0: R1=ctx() R10=fp0\nfrom 2 to 6: R0=1\n"), undefined);
  assertEquals(rejectedInstruction("12: (18) r1 = 0x0 ll\n13: (07) r2 += -8\nR2 !read_ok"), 13);
  assertEquals(rejectedInstruction(""), undefined);
});

Deno.test("Program.load() refers to maps by name and rejects an unknown one", () => {
  throws(
    () => Program.load(spec("nomap", [a.ldMap(R1, "missing"), a.mov64(R0, a.imm(0)), a.exit()])),
    /Program for 'test:nomap' refers to unknown map 'missing'/,
  );
});

Deno.test("A loaded program is listed by bpftool while open and gone after close", async () => {
  const counts = BpfMap.create({
    name: `${PREFIX}cnt`,
    type: "array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  const name = `${PREFIX}good`;
  let prog: Program | undefined;
  try {
    prog = Program.load(spec("good", countAndReturn("counts"), new Map([["counts", counts]])));
    assert(prog.fd > 0);
    assertEquals(prog.name, name);
    assertEquals(prog.probe, "test:good");
    assert(prog.listing().includes("r1 = map[counts] ll"), prog.listing());
    assert(prog.listing().includes("out:"), prog.listing());
    assert(
      (await pollNames("prog", (names) => names.includes(name))).includes(name),
      `${name} not listed while open`,
    );
  } finally {
    prog?.close();
    prog?.close(); // closing twice is harmless
    counts.close();
  }
  assert(
    !(await pollNames("prog", (names) => !names.includes(name))).includes(name),
    `${name} still listed after close`,
  );
});
