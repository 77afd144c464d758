/**
 * RingBuffer against the running kernel. A tracepoint program on the getppid syscall of a perl
 * child writes numbered 40-byte records (a sequence number taken with an atomic fetch-and-add,
 * values derived from it, the pid, a magic constant) and counts failed reservations in a per-CPU
 * array. Records take 48 bytes with their header, which does not divide the buffer size, so
 * they wrap around the end of the data area at varying places.
 *
 * The child blocks reading stdin until the program is attached, and filtering on its pid keeps
 * other processes out. No assertion depends on timing; deadlines only stop a hung test.
 *
 * Needs root, libbpf and perl; x86_64 (syscall numbers).
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap } from "../../bpf/map.ts";
import { Program } from "../../bpf/program.ts";
import { attachTracepoint, type Link } from "../../bpf/link.ts";
import { RingBuffer } from "../../bpf/ringbuf.ts";
import { readFormatSync } from "../../system/tracefs.ts";
import { countAndReturn, pollNames } from "../fixtures/bpf.ts";

const { R0, R1, R2, R3, R6, R7, R10 } = a;

const PREFIX = `r${Deno.pid.toString(36)}_`;
const SYS_GETPPID = 110;
const PAYLOAD = 40;
/** Bytes a record takes in the buffer: 8-byte header, payload rounded up to 8. */
const STEP = 8 + Math.ceil(PAYLOAD / 8) * 8;
const GOLDEN = 0x9e37_79b9_7f4a_7c15n;
const MAGIC = 0x0123_4567_89ab_cdefn;
const MASK64 = (1n << 64n) - 1n;

/** A perl child that runs `body` once stdin reaches EOF (or reads stdin itself). */
class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #closed = false;

  constructor(script: string) {
    this.process = new Deno.Command("perl", {
      args: ["-e", script],
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.process.stdin.getWriter();
  }

  get pid(): number {
    return this.process.pid;
  }

  send(line: string): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Closes stdin and waits for a successful exit. */
  async finish(): Promise<void> {
    this.#closed = true;
    await this.#writer.close();
    const status = await this.process.status;
    assert(status.success, `perl exited with ${status.code}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#closed) {
      this.process.kill("SIGKILL");
      await this.#writer.close().catch(() => {});
    }
    await this.process.status;
  }
}

/** The ring buffer, the program writing to it and the maps it uses, closed together. */
class Fixture implements Disposable {
  readonly rb: RingBuffer;
  readonly seq: BpfMap;
  readonly drops: BpfMap;
  prog?: Program;
  link?: Link;

  constructor(name: string, size: number) {
    this.rb = new RingBuffer(`${PREFIX}${name}`, size);
    const maps: BpfMap[] = [];
    try {
      for (const [suffix, type] of [["seq", "array"], ["drops", "percpu_array"]] as const) {
        maps.push(
          BpfMap.create({
            name: `${PREFIX}${suffix}`,
            type,
            keySize: 4,
            valueSize: 8,
            maxEntries: 1,
          }),
        );
      }
    } catch (e) {
      maps.forEach((m) => m.close());
      this.rb.close();
      throw e;
    }
    [this.seq, this.drops] = maps;
  }

  /** Loads the writer program for process `pid` and attaches it to sys_enter_getppid. */
  attach(pid: number): void {
    this.prog = Program.load({
      name: `${PREFIX}writer`,
      type: "tracepoint",
      probe: "test:ringbuf",
      maps: new Map([["events", this.rb.map], ["seq", this.seq], ["drops", this.drops]]),
      instructions: writer(pid),
    });
    const tp = readFormatSync("syscalls", "sys_enter_getppid");
    this.link = attachTracepoint(this.prog, tp.id, "syscalls:sys_enter_getppid");
  }

  dropped(): bigint {
    return BpfMap.sumPerCpu(this.drops.lookup(new Uint8Array(4))!, 8);
  }

  [Symbol.dispose](): void {
    this.link?.close();
    this.prog?.close();
    this.rb.close();
    this.seq.close();
    this.drops.close();
  }
}

/** The record writer: see the module comment. */
function writer(pid: number): a.Item[] {
  // `lock *(u64 *)(r0 +0) += r7` with BPF_FETCH: r7 receives the old value.
  const fetchAdd = { ...a.atomicAdd("DW", R0, 0, R7), imm: a.AtomicOp.ADD | a.AtomicOp.FETCH };
  return [
    a.call("get_current_pid_tgid"),
    a.alu64("RSH", R0, a.imm(32)),
    a.jmp("JNE", R0, a.imm(pid), "out"),
    // r7 = seq[0]++
    a.st("W", R10, -4, 0),
    a.ldMap(R1, "seq"),
    a.mov64(R2, R10),
    a.alu64("ADD", R2, a.imm(-4)),
    a.call("map_lookup_elem"),
    a.jmp("JEQ", R0, a.imm(0), "out"),
    a.mov64(R7, a.imm(1)),
    fetchAdd,
    // r6 = ringbuf_reserve(events, PAYLOAD, 0)
    a.ldMap(R1, "events"),
    a.mov64(R2, a.imm(PAYLOAD)),
    a.mov64(R3, a.imm(0)),
    a.call("ringbuf_reserve"),
    a.jmp("JEQ", R0, a.imm(0), "drop"),
    a.mov64(R6, R0),
    a.stx("DW", R6, 0, R7), // seq
    a.mov64(R1, R7),
    a.alu64("XOR", R1, a.imm(-1)),
    a.stx("DW", R6, 8, R1), // ~seq
    a.mov64(R1, R7),
    a.ldImm64(R2, GOLDEN),
    a.alu64("MUL", R1, R2),
    a.stx("DW", R6, 16, R1), // seq * GOLDEN
    a.call("get_current_pid_tgid"),
    a.stx("DW", R6, 24, R0), // pid_tgid
    a.ldImm64(R1, MAGIC),
    a.stx("DW", R6, 32, R1), // magic
    a.mov64(R1, R6),
    a.mov64(R2, a.imm(0)),
    a.call("ringbuf_submit"),
    a.ja("out"),
    // drops[0]++ on this CPU
    a.label("drop"),
    ...countAndReturn("drops"),
  ];
}

/** Collects records, checking each one's payload against its sequence number. */
class Records {
  readonly seqs: bigint[] = [];
  /** Records whose bytes run past the end of the data area (read through the second mapping). */
  wrapped = 0;

  constructor(readonly pid: number, readonly size: number) {}

  readonly handler = (data: DataView, offset: number, length: number): void => {
    assertEquals(length, PAYLOAD);
    const seq = data.getBigUint64(offset, true);
    assertEquals(data.getBigUint64(offset + 8, true), ~seq & MASK64, `~seq of record ${seq}`);
    assertEquals(data.getBigUint64(offset + 16, true), (seq * GOLDEN) & MASK64, `record ${seq}`);
    assertEquals(Number(data.getBigUint64(offset + 24, true) >> 32n), this.pid, `pid of ${seq}`);
    assertEquals(data.getBigUint64(offset + 32, true), MAGIC, `magic of record ${seq}`);
    if (offset + length > this.size) this.wrapped++;
    this.seqs.push(seq);
  };

  /** Asserts the records are exactly 0, 1, ..., n-1 in order. */
  assertSequence(n: number): void {
    assertEquals(this.seqs.length, n, "record count");
    this.seqs.forEach((s, i) => assertEquals(s, BigInt(i), `record ${i}`));
  }
}

/** Waits for and drains records until `records` holds `n`, or fails after `ms` (a hang guard). */
async function drainUntil(rb: RingBuffer, records: Records, n: number, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (records.seqs.length < n) {
    assert(Date.now() < deadline, `only ${records.seqs.length} of ${n} records arrived`);
    if (await rb.wait(50)) rb.drain(records.handler);
  }
}

Deno.test("RingBuffer drained while the child runs sees every sequence number once", async () => {
  const n = 2000;
  // Room for every record, so that no reservation can fail however slow the consumer is.
  using f = new Fixture("big", 1 << 17);
  assert(n * STEP <= f.rb.size);
  await using child = new Child(`my @wait = <STDIN>; syscall(${SYS_GETPPID}) for 1..${n};`);
  f.attach(child.pid);
  const records = new Records(child.pid, f.rb.size);
  let exited = false;
  const finished = child.finish().finally(() => {
    exited = true;
  });
  finished.catch(() => {}); // awaited below; a failure must not surface as unhandled meanwhile
  while (!exited) {
    if (await f.rb.wait(50)) f.rb.drain(records.handler);
  }
  await finished;
  f.rb.drain(records.handler);
  records.assertSequence(n);
  assertEquals(f.rb.records, n);
  assertEquals(f.rb.pending(), 0);
  assertEquals(f.dropped(), 0n);
});

Deno.test("RingBuffer of 4096 bytes not drained: delivered plus dropped is exactly N", async () => {
  const n = 1000;
  using f = new Fixture("tiny", 4096);
  await using child = new Child(`my @wait = <STDIN>; syscall(${SYS_GETPPID}) for 1..${n};`);
  f.attach(child.pid);
  await child.finish();
  const records = new Records(child.pid, f.rb.size);
  // A handler that throws still frees the records it was given: the third one is not re-read.
  let calls = 0;
  throws(() =>
    f.rb.drain((data, offset, length) => {
      records.handler(data, offset, length);
      if (++calls === 3) throw new Error("handler failure");
    }), /handler failure/);
  assertEquals(f.rb.records, 3);
  f.rb.drain(records.handler);
  const delivered = records.seqs.length;
  assert(delivered > 0 && delivered * STEP <= f.rb.size, `${delivered} records delivered`);
  // Once full, nothing is freed, so the delivered records are the first ones, in order.
  records.assertSequence(delivered);
  assertEquals(f.rb.records, delivered);
  assertEquals(BigInt(delivered) + f.dropped(), BigInt(n));
  assertEquals(f.rb.pending(), 0);
});

Deno.test("RingBuffer records wrapping around the end of the data area are read intact", async () => {
  const batches = 40;
  const batch = 50; // 50 * 48 bytes fit in the 4096-byte buffer, which is drained between batches
  using f = new Fixture("wrap", 4096);
  assert(batch * STEP < f.rb.size && f.rb.size % STEP !== 0);
  await using child = new Child(
    `$| = 1; while (my $n = <STDIN>) { syscall(${SYS_GETPPID}) for 1..$n }`,
  );
  f.attach(child.pid);
  const records = new Records(child.pid, f.rb.size);
  for (let i = 1; i <= batches; i++) {
    await child.send(String(batch));
    await drainUntil(f.rb, records, i * batch);
  }
  await child.finish();
  f.rb.drain(records.handler);
  records.assertSequence(batches * batch);
  assertEquals(f.dropped(), 0n);
  // 2000 records of 48 bytes go round the 4096-byte buffer 23 times.
  assert(records.wrapped > 0, "no record crossed the end of the data area");
});

Deno.test("RingBuffer rejects a size that is not a power of two of at least a page", () => {
  throws(() => new RingBuffer(`${PREFIX}bad`, 5000), RangeError);
  throws(() => new RingBuffer(`${PREFIX}bad`, 1024), RangeError);
});

Deno.test("RingBuffer.close() frees its map: none of this file's maps remain", async () => {
  const rb = new RingBuffer(`${PREFIX}gone`, 4096);
  rb.close();
  rb.close(); // closing twice is harmless
  const mine = (names: string[]) => names.filter((name) => name.startsWith(PREFIX));
  assertEquals(mine(await pollNames("map", (names) => mine(names).length === 0)), []);
});
