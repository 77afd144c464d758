/**
 * Ring buffer to JavaScript callback throughput, for 32-byte events.
 *
 * A tracepoint program writes one 32-byte record per getppid() of a perl child into a ring
 * buffer large enough to hold them all; then the TypeScript consumer drains them, calling a
 * handler that reads a field of each. Reports events/s of the consumer and drops (target:
 * >= 2M events/s, 0 drops).
 *
 *   tools/run bench/ringbuf.ts [EVENTS]
 */
import * as a from "../bpf/asm/mod.ts";
import { RingBuffer } from "../bpf/ringbuf.ts";
import { BpfMap } from "../bpf/map.ts";
import { Program } from "../bpf/program.ts";
import { attachTracepoint } from "../bpf/link.ts";
import { readFormatSync } from "../system/tracefs.ts";
import { ProgramBuilder } from "../runtime/codegen/builder.ts";

const n = Number(Deno.args[0] ?? 2_000_000);
const RECORD = 32;
const { R0, R1, R2, R3, R6 } = a;

using ring = new RingBuffer("bench_events", 1 << 27); // 128 MiB: room for every record
using drops = BpfMap.create({
  name: "bench_drops",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: 1,
});
const b = new ProgramBuilder();
b.emit(
  a.ldMap(R1, "events"),
  a.mov64(R2, a.imm(RECORD)),
  a.mov64(R3, a.imm(0)),
  a.call("ringbuf_reserve"),
  a.jmp("JNE", R0, a.imm(0), "ok"),
);
b.increment("drops").ret().mark("ok").emit(
  a.mov64(R6, R0),
  a.call("ktime_get_ns"),
  a.stx("DW", R6, 0, R0),
  a.call("get_current_pid_tgid"),
  a.stx("DW", R6, 8, R0),
  a.mov64(R1, R6),
  a.mov64(R2, a.imm(0)),
  a.call("ringbuf_submit"),
).ret();
using prog = Program.load({
  name: "bench_rb",
  type: "tracepoint",
  probe: "bench",
  instructions: b.items,
  maps: new Map([["events", ring.map], ["drops", drops]]),
});
const id = readFormatSync("syscalls", "sys_enter_getppid").id;
using _link = attachTracepoint(prog, id, "syscalls:sys_enter_getppid");
const child = new Deno.Command("perl", { args: ["-e", `syscall(110) for 1..${n}`] }).spawn();
await child.status;

let seen = 0;
let sum = 0n;
const t0 = performance.now();
ring.drain((view, off) => {
  seen++;
  sum += view.getBigUint64(off + 8, true) >> 32n;
});
const ms = performance.now() - t0;
const dropped = BpfMap.sumPerCpu(drops.lookup(new Uint8Array(4))!, 8);
const mine = Number(sum / BigInt(Math.max(seen, 1))) === child.pid ? "" : " (other pids mixed in)";
console.log(
  `ringbuf: ${seen} events of ${RECORD} bytes drained in ${ms.toFixed(1)} ms = ` +
    `${(seen / ms * 1000 / 1e6).toFixed(2)} M events/s, ${dropped} dropped${mine}`,
);
