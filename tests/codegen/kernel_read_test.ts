/**
 * Kernel memory reads through BTF-resolved pointer chains (runtime/codegen/kernel_read.ts).
 *
 * - resolveChain() against the running kernel's BTF: offsets agree with Btf.member(), and
 *   mistakes give one-line errors with the fix.
 * - The generated code on synthetic data: a raw_tracepoint program run once with
 *   BPF_PROG_TEST_RUN reads a byte pattern it wrote to its own stack (kernel memory) through
 *   hand-made chains, so sign extension, bitfield extraction and NULL handling are checked
 *   against values computed here.
 * - sched_switch on the live kernel: records about a perl child that sleeps 50 times, filtered
 *   in the kernel on next->tgid == child, so other activity on the machine cannot interfere;
 *   values are compared with /proc and with this process. A busy perl child pinned to the same
 *   CPU is often `prev`, and its vruntime grows once it has pinned itself. Then kernel threads
 *   (mm == NULL), including the idle task, whose reads through next->mm must give zeros.
 *
 * Needs root, libbpf and perl; x86_64 (the bpf syscall number).
 */
import { deepStrictEqual as assertEquals, fail, ok as assert, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { Btf, BtfError } from "../../bpf/btf.ts";
import { attachRawTracepoint } from "../../bpf/link.ts";
import { BpfMap } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { RingBuffer } from "../../bpf/ringbuf.ts";
import { ProgramBuilder } from "../../runtime/codegen/builder.ts";
import {
  ChainError,
  emitKernelRead,
  emitKernelReadBytes,
  type KernelChain,
  resolveChain,
} from "../../runtime/codegen/kernel_read.ts";
import { testRun } from "../fixtures/bpf.ts";

const { R0, R1, R2, R3, R6, R7, R8, R9, R10 } = a;

const PREFIX = `k${Deno.pid.toString(36)}_`;
/** `task_struct.flags` bit of a task in do_exit() (include/linux/sched.h). */
const PF_EXITING = 0x4;
/** `PF_KTHREAD` in task_struct.flags: kernel threads, the idle tasks among them. */
const PF_KTHREAD = 0x0020_0000;

const btf = Btf.vmlinux();
const switchArgs = btf.rawTracepoint("sched_switch")!;
const argIndex = (name: string): number => {
  const i = switchArgs.findIndex((arg) => arg.name === name);
  assert(i >= 0, `sched_switch has no argument ${name}`);
  return i;
};
/** `struct task_struct *`, the type of sched_switch's prev and next. */
const TASK_PTR = switchArgs[argIndex("next")].type;
const task = (path: string, root = "next") => resolveChain(btf, TASK_PTR, path, root);
const structId = (name: string) => btf.find(name, "struct")!.id;

/** Asserts that `fn` throws a one-line ChainError whose message matches `re`. */
function throwsChain(fn: () => unknown, re: RegExp): ChainError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof ChainError, `expected a ChainError, got ${e}`);
    assert(e instanceof BtfError, "a ChainError is a BtfError");
    assert(re.test(e.message), e.message);
    assert(!e.message.includes("\n"), `one line: ${e.message}`);
    return e;
  }
  return fail(`expected a ChainError matching ${re}`);
}

Deno.test("sched_switch's raw tracepoint passes preempt, prev, next, prev_state", () => {
  assertEquals(switchArgs.map((arg) => arg.name), ["preempt", "prev", "next", "prev_state"]);
  assertEquals(switchArgs[argIndex("prev")].typeName, "struct task_struct *");
  assertEquals(switchArgs[argIndex("next")].typeName, "struct task_struct *");
});

Deno.test("resolveChain() follows -> with a step per pointer and . within a struct", () => {
  const ts = structId("task_struct");
  const parent = task("real_parent->tgid");
  assertEquals(parent.expr, "next->real_parent->tgid");
  assertEquals(parent.steps, [{
    offset: btf.member(ts, "real_parent").offset,
    type: btf.member(ts, "real_parent").type,
    expr: "next->real_parent",
  }]);
  assertEquals(parent.field.offset, btf.member(ts, "tgid").offset);
  assertEquals(parent.field.size, 4);
  assert(parent.field.scalar && parent.field.signed, "pid_t is a signed scalar");
  assertEquals(parent.field.typeName, "pid_t");

  // '.' stays in the same object: one offset, no dereference.
  const vruntime = resolveChain(btf, TASK_PTR, "se.vruntime", "prev");
  assertEquals(vruntime.expr, "prev->se.vruntime");
  assertEquals(vruntime.steps, []);
  assertEquals(vruntime.field.offset, btf.member(ts, "se.vruntime").offset);
  assertEquals([vruntime.field.size, vruntime.field.signed], [8, false]);

  // A leading operator is optional; a struct root takes '.' paths.
  assertEquals(task("->real_parent->tgid"), parent);
  assertEquals(resolveChain(btf, ts, "se.vruntime", "prev").field, vruntime.field);
});

Deno.test("resolveChain() looks through anonymous members: mm->arg_start, bio, request", () => {
  const args = task("mm->arg_start");
  assertEquals(args.steps.map((s) => s.offset), [btf.member(structId("task_struct"), "mm").offset]);
  assertEquals(args.field.offset, btf.member(structId("mm_struct"), "arg_start").offset);
  assert(
    btf.find("mm_struct", "struct")!.members.every((m) => m.name !== "arg_start"),
    "arg_start sits in an anonymous struct of mm_struct on this kernel",
  );

  const bioArg = btf.rawTracepoint("block_bio_queue")!.find((arg) => arg.name === "bio")!;
  const dev = resolveChain(btf, bioArg.type, "bi_bdev->bd_dev", "bio");
  assertEquals(dev.steps.map((s) => s.offset), [btf.member(structId("bio"), "bi_bdev").offset]);
  assertEquals(dev.field.offset, btf.member(structId("block_device"), "bd_dev").offset);
  assertEquals([dev.field.typeName, dev.field.size], ["dev_t", 4]);

  const rqArg = btf.rawTracepoint("block_rq_issue")!.find((arg) => arg.name === "rq")!;
  const flags = resolveChain(btf, rqArg.type, "q->queue_flags", "rq");
  assertEquals(flags.expr, "rq->q->queue_flags");
  assertEquals(flags.field.offset, btf.member(structId("request_queue"), "queue_flags").offset);
});

Deno.test("resolveChain() classifies comm as inline text and indexes arrays", () => {
  const comm = task("comm");
  assertEquals(comm.field.string, "inline");
  assertEquals([comm.field.scalar, comm.field.size, comm.field.typeName], [false, 16, "char[16]"]);
  const second = task("comm[1]");
  assertEquals(second.field.offset, comm.field.offset + 1);
  assert(second.field.scalar && second.field.string === undefined);
  // A member that is `short` reached through two pointers.
  const adj = task("signal->oom_score_adj");
  assertEquals([adj.steps.length, adj.field.size, adj.field.signed], [1, 2, true]);
});

Deno.test("resolveChain() places a task_struct bitfield by its byte and bit", () => {
  const ref = btf.member(structId("task_struct"), "in_execve");
  assert(ref.bitfieldSize > 0, "in_execve is a bitfield on this kernel");
  const chain = task("in_execve");
  assertEquals(chain.field.offset, Math.floor(ref.bitOffset / 8));
  assertEquals(chain.field.bitOffset, ref.bitOffset % 8);
  assertEquals(chain.field.bitfieldSize, ref.bitfieldSize);
  assert(chain.field.scalar);
});

Deno.test("resolveChain() of a misspelled member names the type and close matches", () => {
  const err = throwsChain(
    () => task("real_parent->tgdi"),
    /^Cannot read 'next->real_parent->tgdi': member 'tgdi' is not in struct task_struct; did you mean .*\btgid\b/,
  );
  assert(err.suggestions.includes("tgid"), `${err.suggestions}`);
  assertEquals(err.expr, "next->real_parent->tgdi");
  throwsChain(() => task("se.vruntim"), /'vruntim' is not in struct sched_entity.*vruntime/);
});

Deno.test("resolveChain() says which operator to use when . and -> are mixed up", () => {
  throwsChain(
    () => task("real_parent.tgid"),
    /next->real_parent \(struct task_struct \*\) is a pointer: use -> instead of \.$/,
  );
  throwsChain(
    () => task("se->vruntime"),
    /next->se \(struct sched_entity\) is not a pointer: use \. instead of ->$/,
  );
  throwsChain(() => task(".pid"), /next \(struct task_struct \*\) is a pointer: use -> instead/);
  throwsChain(() => task("pid->x"), /next->pid \(pid_t\) is not a pointer/);
  throwsChain(() => task("comm[16]"), /index 16 is past the end of next->comm \(char\[16\]\)/);
  throwsChain(() => task("real_parent->"), /'->' must be followed by a member name/);
  throwsChain(() => task("pid tgid"), /'tgid' must follow '\.' or '->'/);
  throwsChain(() => task("comm+1"), /unexpected '\+1' at column 5/);
});

Deno.test("emitKernelRead() and emitKernelReadBytes() refuse what they cannot load", () => {
  const b = new ProgramBuilder();
  throwsChain(() => emitKernelRead(b, R6, task("comm"), R0), /char\[16\].*emitKernelReadBytes/);
  throwsChain(
    () => emitKernelReadBytes(b, R6, task("comm"), R7, 0, 32),
    /char\[16\] \(16 bytes\), fewer than the 32 bytes/,
  );
  throwsChain(() => emitKernelReadBytes(b, R6, task("in_execve"), R7, 0, 4), /bitfield/);
  throws(() => emitKernelReadBytes(b, R6, task("comm"), R1, 0, 16), /R1 is clobbered/);
});

// --- Generated code on synthetic data ----------------------------------------------------------

/** A chain over synthetic memory: `steps` pointer offsets, then the field described. */
function synthetic(
  steps: number[],
  field: { offset: number; size: number; signed?: boolean; bitOffset?: number; bits?: number },
  string?: "inline",
): KernelChain {
  return {
    expr: `synthetic@${field.offset}`,
    steps: steps.map((offset) => ({ offset, type: 0, expr: `ptr@${offset}` })),
    field: {
      offset: field.offset,
      size: field.size,
      bitOffset: field.bitOffset ?? 0,
      bitfieldSize: field.bits ?? 0,
      type: 0,
      typeName: "synthetic",
      signed: field.signed ?? false,
      scalar: string === undefined,
      string,
    },
  };
}

/** What reading `field` from `bytes` must give, computed independently of the generated code. */
function expected(
  bytes: Uint8Array,
  f: { offset: number; size: number; signed?: boolean; bitOffset?: number; bits?: number },
): bigint {
  let raw = 0n;
  for (let i = 7; i >= 0; i--) raw = (raw << 8n) | BigInt(bytes[f.offset + i] ?? 0);
  const width = f.bits ?? f.size * 8;
  const value = (raw >> BigInt(f.bitOffset ?? 0)) & ((1n << BigInt(width)) - 1n);
  return BigInt.asUintN(64, f.signed ? BigInt.asIntN(width, value) : value);
}

Deno.test("emitKernelRead() sign-extends, extracts bitfields and reads through pointers", () => {
  const pattern = new Uint8Array([
    0xf0,
    0x9a,
    0x85,
    0x7c,
    0x11,
    0x22,
    0x83,
    0xff,
    0x68,
    0x69,
    0x00,
    0x58,
    0x59,
    0x5a,
    0x41,
    0x42,
  ]);
  const fields = [
    { offset: 0, size: 1, signed: true }, // 0xf0: -16
    { offset: 0, size: 1 }, // 240
    { offset: 2, size: 2, signed: true }, // positive
    { offset: 6, size: 2, signed: true }, // negative
    { offset: 4, size: 4 }, // zero-extended, top bit set
    { offset: 4, size: 4, signed: true },
    { offset: 0, size: 8, signed: true },
    { offset: 0, size: 4, bitOffset: 4, bits: 10 }, // spans two bytes
    { offset: 1, size: 4, bitOffset: 5, bits: 17 }, // spans three bytes: a 4-byte load
    { offset: 6, size: 4, bitOffset: 7, bits: 5, signed: true }, // all ones: -1
    { offset: 1, size: 4, bitOffset: 3, bits: 7, signed: true }, // sign bit clear
    { offset: 7, size: 1, bitOffset: 7, bits: 1 }, // the very top bit
    { offset: 3, size: 8, bitOffset: 1, bits: 40, signed: true },
  ];
  const b = new ProgramBuilder();
  const data = b.alloc(16);
  const pointer = b.alloc(8); // holds the address of `data`
  const nullPointer = b.alloc(16); // [0]: 0, [8]: 0
  const scratch = b.alloc(8);
  const view = new DataView(pattern.buffer);
  b.emit(
    a.ldImm64(R1, view.getBigUint64(0, true)),
    a.stx("DW", R10, data, R1),
    a.ldImm64(R1, view.getBigUint64(8, true)),
    a.stx("DW", R10, data + 8, R1),
  );
  b.stackPtr(R1, data).emit(a.stx("DW", R10, pointer, R1)).zero(nullPointer, 16);
  // The results go to an array map's value: 8 bytes per read, then two 16-byte copies.
  b.emit(a.st("W", R10, scratch, 0)).lookup("out", scratch, "out").emit(a.mov64(R7, R0));
  b.stackPtr(R8, data);
  fields.forEach((f, i) => {
    emitKernelRead(b, R8, synthetic([], f), R0, scratch);
    b.emit(a.stx("DW", R7, 8 * i, R0));
  });
  const through = 8 * fields.length;
  // Through the pointer to `data`; through a NULL pointer (with and without an offset before
  // the member); from a NULL root.
  b.stackPtr(R9, pointer);
  emitKernelRead(b, R9, synthetic([0], { offset: 4, size: 4 }), R0, scratch);
  b.emit(a.stx("DW", R7, through, R0));
  b.stackPtr(R9, nullPointer);
  emitKernelRead(b, R9, synthetic([8], { offset: 4, size: 4 }), R0, scratch);
  b.emit(a.stx("DW", R7, through + 8, R0));
  emitKernelRead(b, R9, synthetic([0], { offset: 0, size: 8 }), R0, scratch);
  b.emit(a.stx("DW", R7, through + 16, R0), a.mov64(R9, a.imm(0)));
  emitKernelRead(b, R9, synthetic([], { offset: 12, size: 4 }), R0, scratch);
  b.emit(a.stx("DW", R7, through + 24, R0));
  // Bytes: a verbatim copy through the pointer; text stopping at its NUL, with zeros after it
  // in a destination first filled with 0xff; a copy through NULL into such a destination.
  const bytesAt = through + 32;
  b.stackPtr(R9, pointer);
  emitKernelReadBytes(b, R9, synthetic([0], { offset: 0, size: 16 }), R7, bytesAt, 16, scratch);
  b.emit(a.st("DW", R7, bytesAt + 16, -1), a.st("DW", R7, bytesAt + 24, -1));
  emitKernelReadBytes(b, R8, synthetic([], { offset: 8, size: 8 }, "inline"), R7, bytesAt + 16, 8);
  b.emit(a.st("DW", R7, bytesAt + 32, -1), a.st("DW", R7, bytesAt + 40, -1));
  b.stackPtr(R9, nullPointer);
  emitKernelReadBytes(b, R9, synthetic([0], { offset: 0, size: 16 }), R7, bytesAt + 32, 16);
  b.mark("out").ret();

  using out = BpfMap.create({
    name: `${PREFIX}out`,
    type: "array",
    keySize: 4,
    valueSize: bytesAt + 48,
    maxEntries: 1,
  });
  using prog = Program.load({
    name: `${PREFIX}synth`,
    type: "raw_tracepoint",
    probe: "test:kernel_read_synthetic",
    maps: new Map([["out", out]]),
    instructions: b.items,
  });
  assertEquals(testRun(prog), 0);
  const value = out.lookup(new Uint8Array(4))!;
  const result = new DataView(value.buffer);
  fields.forEach((f, i) => {
    assertEquals(result.getBigUint64(8 * i, true), expected(pattern, f), JSON.stringify(f));
  });
  assertEquals(result.getBigUint64(through, true), expected(pattern, { offset: 4, size: 4 }));
  assertEquals(result.getBigUint64(through + 8, true), 0n, "NULL pointer, member at +4");
  assertEquals(result.getBigUint64(through + 16, true), 0n, "NULL pointer, member at 0");
  assertEquals(result.getBigUint64(through + 24, true), 0n, "NULL root");
  assertEquals(value.slice(bytesAt, bytesAt + 16), pattern);
  // "hi", zeros up to the 8 bytes asked for (not 0xff: zeroed first), then untouched bytes.
  assertEquals(
    value.slice(bytesAt + 16, bytesAt + 32),
    new Uint8Array([0x68, 0x69, ...Array(6).fill(0), ...Array(8).fill(0xff)]),
  );
  assertEquals(value.slice(bytesAt + 32, bytesAt + 48), new Uint8Array(16), "NULL: zeroed");
});

// --- sched_switch on the live kernel -----------------------------------------------------------

/** What a sched_switch program writes and how the test collects it. */
interface Collection<T> {
  name: string;
  recordSize: number;
  /** Emits the program after `R6 = ctx`; it must end with {@link submit}. */
  build: (b: ProgramBuilder) => void;
  decode: (record: DataView) => T;
  /** Runs once the program is attached. */
  attached?: () => Promise<void>;
  /** Checked after each drain: true stops collecting. */
  until: (records: T[]) => boolean;
  timeoutMs: number;
}

/** Loads a program with a ring buffer `events`, attaches it to sched_switch, collects records. */
async function collect<T>(
  { name, recordSize, build, decode, attached, until, timeoutMs }: Collection<T>,
): Promise<T[]> {
  using rb = new RingBuffer(`${PREFIX}${name}`, 1 << 20);
  const b = new ProgramBuilder();
  b.emit(a.mov64(R6, R1));
  build(b);
  using prog = Program.load({
    name: `${PREFIX}${name}`,
    type: "raw_tracepoint",
    probe: `test:${name}`,
    maps: new Map([["events", rb.map]]),
    instructions: b.items,
  });
  const records: T[] = [];
  const drain = () =>
    rb.drain((data, offset, length) => {
      assertEquals(length, recordSize);
      records.push(decode(new DataView(data.buffer, data.byteOffset + offset, length)));
    });
  using _link = attachRawTracepoint(prog, "sched_switch");
  await attached?.();
  const deadline = Date.now() + timeoutMs;
  while (!until(records) && Date.now() < deadline) {
    await rb.wait(50);
    drain();
  }
  drain();
  return records;
}

/** Reserves a record of `size` bytes into R7, or jumps to `out`. */
function reserve(b: ProgramBuilder, size: number): void {
  b.emit(
    a.ldMap(R1, "events"),
    a.mov64(R2, a.imm(size)),
    a.mov64(R3, a.imm(0)),
    a.call("ringbuf_reserve"),
    a.jmp("JEQ", R0, a.imm(0), "out"),
    a.mov64(R7, R0),
  );
}

function submit(b: ProgramBuilder): void {
  b.emit(a.mov64(R1, R7), a.mov64(R2, a.imm(0)), a.call("ringbuf_submit")).mark("out").ret();
}

/** Reads `chain` from `src` and stores its low `size` bytes at `at` in the record (R7). */
function store(b: ProgramBuilder, src: a.Reg, chain: KernelChain, at: number, scratch: number) {
  emitKernelRead(b, src, chain, R0, scratch);
  const size = ({ 1: "B", 2: "H", 4: "W", 8: "DW" } as const)[chain.field.size as 1 | 2 | 4 | 8];
  b.emit(a.stx(size, R7, at, R0));
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat. */
function statField(pid: number, n: number): string {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return text.slice(text.lastIndexOf(")") + 2).split(" ")[n - 3];
}

const text = (bytes: Uint8Array) => {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
};

/** The highest online CPU, where the test's children are pinned. */
function lastCpu(): number {
  const online = Deno.readTextFileSync("/sys/devices/system/cpu/online").trim();
  return Math.max(...online.split(/[,-]/).map(Number));
}

/** A perl child pinned to `cpu` (sched_setaffinity is syscall 203 on x86_64) running `body`. */
function pinnedPerl(cpu: number, body: string, stdin: "piped" | "null"): Deno.ChildProcess {
  // syscall() passes a string as a pointer to its bytes, and wants a variable for it.
  const pin = `my $mask = pack("Q", 1 << ${cpu}); syscall(203, 0, 8, $mask) == 0 or die "$!";`;
  return new Deno.Command("perl", {
    args: ["-e", `${pin} ${body}`],
    stdin,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** `se.vruntime` of /proc/<pid>/sched, printed as milliseconds with six decimals, in ns. */
function procVruntime(pid: number): bigint {
  const line = Deno.readTextFileSync(`/proc/${pid}/sched`).match(/^se\.vruntime\s*:\s*(\S+)/m);
  assert(line, `no se.vruntime in /proc/${pid}/sched`);
  const [ms, frac] = line[1].split(".");
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(6, "0"));
}

Deno.test("sched_switch into a perl child reads pid, parent, comm, vruntime, mm, exe name", async () => {
  // A busy child on the same CPU, so that switches into the sleeper often come from a fair task
  // whose vruntime only grows (it never sleeps or migrates): prev->se.vruntime is checkable.
  const cpu = lastCpu();
  const hog = pinnedPerl(cpu, "1 while 1", "null");
  // The child waits for EOF on stdin, so nothing it does is missed, then sleeps 50 times.
  const child = pinnedPerl(
    cpu,
    "my @wait = <STDIN>; select(undef, undef, undef, 0.01) for 1..50",
    "piped",
  );
  try {
    const pid = child.pid;
    // A short to read through next->signal. Raising it needs no privilege, unlike lowering it
    // (CAP_SYS_RESOURCE); negative values are covered by the synthetic test above.
    Deno.writeTextFileSync(`/proc/${pid}/oom_score_adj`, "123");
    const argStart = BigInt(statField(pid, 48));
    const exeName = Deno.realPathSync(`/proc/${pid}/exe`).split("/").pop()!.slice(0, 15);
    assert(argStart > 0n, "arg_start from /proc");

    let exited = false;
    child.status.then(() => exited = true);
    const next = argIndex("next"), prev = argIndex("prev");
    const records = await collect({
      name: "switch",
      recordSize: 80,
      build: (b) => {
        const scratch = b.alloc(8);
        b.emit(a.ldx("DW", R8, R6, 8 * next), a.ldx("DW", R9, R6, 8 * prev));
        // In-kernel filter: only switches into the child.
        emitKernelRead(b, R8, task("tgid"), R0, scratch);
        b.emit(a.jmp("JNE", R0, a.imm(pid), "out"));
        // Not once it exits: exit_mm() clears its mm, and a slow machine may switch into it
        // after that.
        emitKernelRead(b, R8, task("flags"), R0, scratch);
        b.emit(a.jmp("JSET", R0, a.imm(PF_EXITING), "out"));
        reserve(b, 80);
        store(b, R8, task("pid"), 0, scratch);
        store(b, R8, task("tgid"), 4, scratch);
        store(b, R8, task("real_parent->tgid"), 8, scratch);
        emitKernelRead(b, R8, task("in_execve"), R0, scratch);
        b.emit(a.stx("W", R7, 12, R0));
        store(b, R9, resolveChain(btf, TASK_PTR, "se.vruntime", "prev"), 16, scratch);
        emitKernelReadBytes(b, R8, task("comm"), R7, 24, 16, scratch);
        store(b, R8, task("mm->arg_start"), 40, scratch);
        store(b, R8, task("se.vruntime"), 48, scratch);
        emitKernelRead(b, R8, task("signal->oom_score_adj"), R0, scratch);
        b.emit(a.stx("W", R7, 56, R0)); // sign-extended: the low 4 bytes hold an int
        store(b, R9, task("pid", "prev"), 60, scratch);
        // A `const unsigned char *` at the end of four pointers: the text is fetched through it.
        const exe = task("mm->exe_file->f_path.dentry->d_name.name");
        assertEquals(exe.field.string, "pointer");
        emitKernelReadBytes(b, R8, exe, R7, 64, 16, scratch);
        submit(b);
      },
      decode: (r) => ({
        pid: r.getInt32(0, true),
        tgid: r.getInt32(4, true),
        parentTgid: r.getInt32(8, true),
        inExecve: r.getUint32(12, true),
        prevVruntime: r.getBigUint64(16, true),
        comm: text(new Uint8Array(r.buffer, r.byteOffset + 24, 16)),
        argStart: r.getBigUint64(40, true),
        vruntime: r.getBigUint64(48, true),
        oomScoreAdj: r.getInt32(56, true),
        prevPid: r.getInt32(60, true),
        exe: text(new Uint8Array(r.buffer, r.byteOffset + 64, 16)),
      }),
      attached: () => child.stdin.close(), // let the child run
      // Its last switches may still be in the buffer: collect() drains once more after this.
      until: () => exited,
      timeoutMs: 30_000,
    });
    const status = await child.status;
    assert(status.success, `perl exited with ${status.code}`);
    const hogNow = procVruntime(hog.pid);

    assert(records.length >= 10, `only ${records.length} switches into the child`);
    for (const r of records) {
      assertEquals([r.pid, r.tgid, r.parentTgid], [pid, pid, Deno.pid]);
      const record = JSON.stringify(r, (_, v) => typeof v === "bigint" ? `${v}` : v);
      assertEquals(r.comm, "perl", record);
      assertEquals(r.exe, exeName, record);
      assert(r.inExecve === 0 || r.inExecve === 1, `in_execve ${r.inExecve}`);
      assertEquals(r.argStart, argStart);
      assertEquals(r.oomScoreAdj, 123);
      assert(r.vruntime > 0n, "the child's own vruntime");
    }
    const fromHog = records.filter((r) => r.prevPid === hog.pid).map((r) => r.prevVruntime);
    assert(fromHog.length >= 1, `no switch from the busy child: ${records.length} records`);
    assert(fromHog[0] > 0n, "the busy child's vruntime");
    // A vruntime is renormalized when its task migrates (the busy child pins itself once it
    // runs) and, under EEVDF, when its weight changes; it grows otherwise: over most of the run.
    let settled = 0;
    fromHog.forEach((v, i) => {
      if (i > 0 && v < fromHog[i - 1]) settled = i;
    });
    assert(fromHog.length - settled >= fromHog.length / 2, `vruntime fell late: ${fromHog}`);
    assert(fromHog.at(-1)! <= hogNow, `${fromHog.at(-1)} read, ${hogNow} in /proc afterwards`);
  } finally {
    await child.stdin.close().catch(() => {});
    for (const p of [child, hog]) {
      try {
        p.kill("SIGKILL");
      } catch { /* already exited */ }
      await p.status;
    }
  }
});

Deno.test("sched_switch into kernel threads: reads through next->mm == NULL give zeros", async () => {
  const next = argIndex("next");
  const hasOwner = (() => {
    try {
      return task("mm->owner->comm").field.string === "inline";
    } catch (e) {
      if (e instanceof ChainError) return false; // a kernel without CONFIG_MEMCG
      throw e;
    }
  })();
  const records = await collect({
    name: "kthreads",
    recordSize: 56,
    build: (b) => {
      const scratch = b.alloc(8);
      b.emit(a.ldx("DW", R8, R6, 8 * next));
      // In-kernel filter: kernel threads only (the idle tasks are among them).
      emitKernelRead(b, R8, task("flags"), R0, scratch);
      b.emit(a.alu64("AND", R0, a.imm(PF_KTHREAD)), a.jmp("JEQ", R0, a.imm(0), "out"));
      reserve(b, 56);
      store(b, R8, task("pid"), 0, scratch);
      store(b, R8, task("mm"), 8, scratch);
      store(b, R8, task("mm->arg_start"), 16, scratch);
      // Fill with 0xff first: the zeros that must come back are the read's.
      for (const at of [24, 32, 40, 48]) b.emit(a.st("DW", R7, at, -1));
      emitKernelReadBytes(b, R8, task("mm->saved_auxv"), R7, 24, 16, scratch);
      if (hasOwner) emitKernelReadBytes(b, R8, task("mm->owner->comm"), R7, 40, 16, scratch);
      else b.emit(a.st("DW", R7, 40, 0), a.st("DW", R7, 48, 0));
      submit(b);
    },
    decode: (r) => ({
      pid: r.getInt32(0, true),
      mm: r.getBigUint64(8, true),
      argStart: r.getBigUint64(16, true),
      auxv: new Uint8Array(r.buffer.slice(r.byteOffset + 24, r.byteOffset + 40)),
      ownerComm: new Uint8Array(r.buffer.slice(r.byteOffset + 40, r.byteOffset + 56)),
    }),
    until: (seen) => seen.filter((r) => r.pid === 0).length >= 5,
    timeoutMs: 10_000,
  });
  const idle = records.filter((r) => r.pid === 0);
  assert(idle.length >= 5, `only ${idle.length} switches into the idle task`);
  const withoutMm = records.filter((r) => r.mm === 0n);
  for (const r of idle) assertEquals(r.mm, 0n, "the idle task has no mm");
  for (const r of withoutMm) {
    assertEquals(r.argStart, 0n, `pid ${r.pid}: next->mm->arg_start`);
    assertEquals(r.auxv, new Uint8Array(16), `pid ${r.pid}: next->mm->saved_auxv`);
    assertEquals(r.ownerComm, new Uint8Array(16), `pid ${r.pid}: next->mm->owner->comm`);
  }
});
