/**
 * Each AIO request from submit to reap, in the kernel. io_submit's return records the first
 * `ret` iocbs it took (a partial submit takes only those) in a slot table (`slot_table.ts`: an
 * array slot where it is free, else a hash) keyed by {tgid, ctx_id, iocb address}
 * (applications reuse `aio_data`, never a live iocb); the return of io_getevents
 * or io_pgetevents finds each reaped io_event's iocb there, times it and deletes it: the
 * `aio:reap` event. A successful io_cancel deletes its request; io_destroy marks its context,
 * and the session removes that context's requests, and those of processes that exited, about
 * once a second.
 *
 * The time runs from io_submit's return to the reaping call's return, as fio's clat does.
 * Requests reaped from the mapped ring in user space (no io_getevents) are never reaped here:
 * the counters show submits without reaps, which recipes report as a blind spot.
 *
 * Only the returns run: they read their syscall's arguments from the task's saved registers.
 * A request's record is its submit time, and its iocb's fd, opcode, size and offset only where
 * a consumer reads them; a reaping call counts its io_events once.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  ja,
  jmp,
  ldImm64,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R4,
  R6,
  R7,
  R9,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { requireLoop } from "../../../bpf/features.ts";
import { attachTracepoint } from "../../../bpf/link.ts";
import type { BpfMap } from "../../../bpf/map.ts";
import { pathExists } from "../../../system/files.ts";
import type { Program } from "../../../bpf/program.ts";
import { ProgramBuilder } from "../../codegen/builder.ts";
import { emitPut, emitTake, slotTable, tableItems } from "../../codegen/slot_table.ts";
import { emitSyscallRegs, loadSyscallArg } from "../../codegen/syscall_regs.ts";
import { type EventField, headerFields } from "../../codegen/fields.ts";
import { emitEach, probeProgram, type Rounds } from "../../codegen/probe_program.ts";
import type { Expr } from "../../lambda/ir.ts";
import type { ProbeSite, ProgramPlan, SiteContext } from "../provider.ts";
import { tracepointFormat } from "../tracepoint.ts";
import { fdPath, forgetPaths, IO_EVENT, IOCB, OPCODES } from "./abi.ts";

/**
 * Most iocbs recorded per io_submit, and io_events timed per reaping call (more are counted
 * in `aio.batch_overflow`): aio-max-nr's default, the most one context holds unless raised.
 */
export const MAX_BATCH = 65536;
const RET = 16;
const INFLIGHT = "aio_inflight";
const DESTROYED = "aio_destroyed";

/** Counter names, as `RunSummary.counters` shows them. */
export const AIO_COUNTERS = {
  submitted: "aio.submitted",
  /** io_events that io_getevents and io_pgetevents returned, timed or not (see `unmatched`). */
  reaped: "aio.reaped",
  unmatched: "aio.unmatched",
  lost: "aio.lost",
  cancelled: "aio.cancelled",
  overflow: "aio.batch_overflow",
  /**
   * In-flight requests whose iocb address was submitted again before their reap was seen
   * (reaped from the ring in user space, or by a reap this provider could not time).
   */
  replaced: "aio.replaced",
  /** Requests removed because their context was destroyed or their process exited. */
  swept: "aio.swept",
  /** Requests submitted and neither reaped nor swept when the session ended. */
  inflight: "aio.inflight",
} as const;

/** What the counters of lost timings lost, said at the end of a run when not 0. */
const AIO_LOSSES: Partial<Record<keyof typeof AIO_COUNTERS, string>> = {
  unmatched: "AIO requests reaped without a submit seen (before tracing began): not timed",
  lost: "AIO requests not timed: the in-flight map was full",
  overflow: `AIO requests not timed: more than ${MAX_BATCH} in one call`,
  replaced: "AIO requests never timed: their iocb was submitted again before their reap was seen",
};

/** The slot of an AIO counter, with what it lost. */
function counter(ctx: SiteContext, name: keyof typeof AIO_COUNTERS): number {
  return ctx.counter(AIO_COUNTERS[name], AIO_LOSSES[name]);
}

/** Key {tgid, ctx_id, iocb}. */
const KEY_SIZE = 24;

/**
 * A request's record from its submit: the submit time, then the iocb's fd (u32) and opcode
 * (u32), nbytes and offset, copied only where a reap's consumer reads them (the reap's capture
 * is made before its consumers are known, so the record keeps their room).
 */
const RECORD = { time: 0, fd: 8, opcode: 12, nbytes: 16, offset: 24, size: 32 } as const;

/** Requests in flight: a slot each for the common depths, room for aio-max-nr's default. */
const LAYOUT = { keySize: KEY_SIZE, valueSize: RECORD.size, count: 4096, spilled: 65536 };
/** The in-flight table, by the names its programs refer to ({@link reapSites} declares it). */
const TABLE = slotTable((spec) => spec.name, INFLIGHT, LAYOUT);

/** The reap fields read from the submit's copy of the iocb. */
const FROM_IOCB = ["fd", "opcode", "op", "bytes", "offset", "path"];

/** Attaches to a syscall's return. */
function exitAttach(syscall: string): (p: Program) => ReturnType<typeof attachTracepoint> {
  const exit = tracepointFormat("syscalls", `sys_exit_${syscall}`);
  return (p) => attachTracepoint(p, exit.id, `syscalls:sys_exit_${syscall}`);
}

/**
 * A program at a syscall's return. Its arguments are read from the task's saved registers
 * (see `syscall_regs.ts`), so no entry program saves them.
 */
function onReturn(
  name: string,
  syscall: string,
  ctx: SiteContext,
  body: (b: ProgramBuilder) => void,
): ProgramPlan {
  return {
    name,
    type: "tracepoint",
    instructions: probeProgram({ filter: ctx.filter, body }),
    attach: exitAttach(syscall),
  };
}

/**
 * Writes the syscall's context (argument 0) into the key {tgid, ctx_id, iocb} at R10 + `key`;
 * leaves R0 at the syscall's registers, for its other arguments.
 */
function emitContext(b: ProgramBuilder, key: number): void {
  emitSyscallRegs(b);
  loadSyscallArg(b, R0, 0, R1);
  b.emit(stx("DW", R10, key + 8, R1));
}

/** Completes the key at R10 + `key` ({@link emitContext}): the tgid, and the iocb in R3. */
function emitKey(b: ProgramBuilder, key: number): void {
  b.emit(stx("DW", R10, key + 16, R3), call("get_current_pid_tgid"), alu64("RSH", R0, imm(32)));
  b.emit(stx("DW", R10, key, R0));
}

/**
 * io_submit's return: records the first `ret` iocbs, with what the iocb says where `iocb`
 * (a reap's consumer reads it).
 */
function submitRecorder(ctx: SiteContext, iocb: boolean): ProgramPlan {
  return onReturn("aio_submit_r", "io_submit", ctx, (b) => {
    const n = b.alloc(8);
    const end = b.fresh("submit_end");
    b.emit(ldx("DW", R0, R6, RET), jmp("JSLE", R0, imm(0), end), stx("DW", R10, n, R0));
    b.increment(ctx.counters, counter(ctx, "submitted"), n);
    emitEach(b, {}, rounds(ctx), (b) => recordSubmit(b, ctx, iocb));
    b.mark(end);
  });
}

/** One round per iocb submitted or io_event reaped (the syscall's return value). */
function rounds(ctx: SiteContext): Rounds {
  return {
    count: (b) => b.emit(ldx("DW", R0, R6, RET)),
    max: MAX_BATCH,
    overflow: { map: ctx.counters, index: counter(ctx, "overflow") },
  };
}

/**
 * The reaping call's rounds, one per io_event: each counted as reaped at once (those found
 * without a submit are also counted as unmatched).
 */
function reapRounds(ctx: SiteContext): Rounds {
  const n = rounds(ctx);
  return {
    ...n,
    count: (b) => {
      const reaped = b.alloc(8);
      const none = b.fresh("none_reaped");
      n.count(b);
      b.emit(jmp("JSLE", R0, imm(0), none), stx("DW", R10, reaped, R0));
      b.increment(ctx.counters, counter(ctx, "reaped"), reaped).mark(none);
      n.count(b);
    },
  };
}

/** Records submitted iocb i in the in-flight map: its time, and where `iocb` what it says. */
function recordSubmit(b: ProgramBuilder, ctx: SiteContext, iocb: boolean): void {
  const counters = ctx.counters;
  const key = b.alloc(KEY_SIZE);
  const value = b.alloc(RECORD.size);
  // The iocb pointer iocbpp[i] (argument 2), then the iocb it points to.
  emitContext(b, key);
  loadSyscallArg(b, R0, 2, R3);
  b.emit(ldx("DW", R1, R10, b.loopIndex!), alu64("LSH", R1, imm(3)), alu64("ADD", R3, R1));
  b.stackPtr(R1, key + 16).emit(mov64(R2, imm(8)), call("probe_read_user"));
  b.emit(ldx("DW", R3, R10, key + 16));
  emitKey(b, key);
  b.emit(stx("DW", R10, value + RECORD.time, R9));
  if (!iocb) b.zero(value + 8, RECORD.size - 8);
  else {
    // The iocb from its opcode to its offset: what the record keeps of it.
    const from = IOCB.opcode;
    const size = IOCB.offset + 8 - from;
    const copy = b.alloc(size);
    b.stackPtr(R1, copy).emit(mov64(R2, imm(size)));
    b.emit(ldx("DW", R3, R10, key + 16), alu64("ADD", R3, imm(from)), call("probe_read_user"));
    const at = (field: number) => copy + field - from;
    b.emit(
      ldx("H", R1, R10, at(IOCB.opcode)),
      ldx("W", R2, R10, at(IOCB.fd)),
      ldx("DW", R3, R10, at(IOCB.nbytes)),
      ldx("DW", R4, R10, at(IOCB.offset)),
      stx("W", R10, value + RECORD.fd, R2),
      stx("W", R10, value + RECORD.opcode, R1),
      stx("DW", R10, value + RECORD.nbytes, R3),
      stx("DW", R10, value + RECORD.offset, R4),
    );
  }
  emitPut(b, TABLE, key, value, {
    replaced: [counters, counter(ctx, "replaced")],
    lost: [counters, counter(ctx, "lost")],
  });
}

/** io_cancel's return: a cancelled request will not be reaped. */
function cancelRecorder(ctx: SiteContext): ProgramPlan {
  return onReturn("aio_cancel_r", "io_cancel", ctx, (b) => {
    const key = b.alloc(KEY_SIZE);
    const end = b.fresh("cancel_end");
    b.emit(ldx("DW", R0, R6, RET), jmp("JNE", R0, imm(0), end));
    emitContext(b, key);
    loadSyscallArg(b, R0, 1, R3);
    emitKey(b, key);
    emitTake(b, TABLE, key, () => {}, end);
    b.increment(ctx.counters, counter(ctx, "cancelled")).mark(end);
  });
}

/** io_destroy's entry: marks the context, for the session to remove its requests. */
function destroyRecorder(): ProgramPlan {
  const enter = tracepointFormat("syscalls", "sys_enter_io_destroy");
  const b = new ProgramBuilder();
  const key = b.alloc(16);
  const one = b.alloc(8);
  b.emit(mov64(R7, R1), call("get_current_pid_tgid"), alu64("RSH", R0, imm(32)));
  b.emit(stx("DW", R10, key, R0), ldx("DW", R0, R7, 16), stx("DW", R10, key + 8, R0));
  b.emit(st("DW", R10, one, 1));
  b.update(DESTROYED, key, one).ret();
  return {
    name: "aio_destroy",
    type: "tracepoint",
    instructions: b.items,
    attach: (p: Program) => attachTracepoint(p, enter.id, "syscalls:sys_enter_io_destroy"),
  };
}

/**
 * Removes requests of destroyed contexts and of processes that are gone; says how many it
 * removed and how many requests are still in flight.
 */
function sweep(maps: ReadonlyMap<string, BpfMap>): Record<string, number> {
  forgetPaths();
  const destroyed = maps.get(DESTROYED)!;
  let swept = 0;
  const dead = new Set<string>();
  for (const key of [...destroyed.keys()]) {
    const v = new DataView(key.buffer);
    dead.add(`${v.getBigUint64(0, true)}:${v.getBigUint64(8, true)}`);
    destroyed.delete(key);
  }
  const alive = new Map<bigint, boolean>();
  const items = tableItems(TABLE, maps);
  for (const item of items) {
    const v = new DataView(item.key.buffer);
    const tgid = v.getBigUint64(0, true);
    if (!alive.has(tgid)) alive.set(tgid, pathExists(`/proc/${tgid}`));
    if (!alive.get(tgid) || dead.has(`${tgid}:${v.getBigUint64(8, true)}`)) {
      item.remove();
      swept++;
    }
  }
  return { [AIO_COUNTERS.swept]: swept, [AIO_COUNTERS.inflight]: items.length - swept };
}

/** Offsets in the one capture that reads a reaped io_event and its recorded submit. */
const REAP = {
  event: 0,
  submitted: IO_EVENT.size,
  fd: IO_EVENT.size + 8,
  opcode: IO_EVENT.size + 12,
  nbytes: IO_EVENT.size + 16,
  offset: IO_EVENT.size + 24,
  latency: IO_EVENT.size + 32,
  /** The reaping process's pid and the request's fd, for the fd's path. */
  pid: IO_EVENT.size + 40,
  /** The opcode's name, written in the kernel so predicates and keys can use it. */
  op: IO_EVENT.size + 48,
  size: IO_EVENT.size + 56,
} as const;

/** Writes the name of the recorded opcode (`IOCB_CMD_*`) as 8 bytes at R7 + `at`. */
function emitOpName(b: ProgramBuilder, at: number): void {
  const done = b.fresh("op_named");
  const opcode = at - REAP.op + REAP.opcode;
  b.emit(st("DW", R7, at, 0), ldx("W", R1, R7, opcode));
  for (const [code, name] of Object.entries(OPCODES)) {
    const next = b.fresh("op");
    let word = 0n;
    const bytes = new TextEncoder().encode(name);
    for (let i = bytes.length - 1; i >= 0; i--) word = (word << 8n) | BigInt(bytes[i]);
    b.emit(jmp("JNE", R1, imm(Number(code)), next), ldImm64(R2, word), stx("DW", R7, at, R2));
    b.emit(ja(done)).mark(next);
  }
  b.mark(done);
}

/** Reads io_event i of the reaping call, finds, times and deletes its request. */
function emitReap(b: ProgramBuilder, ctx: SiteContext, dst: number): void {
  const key = b.alloc(KEY_SIZE);
  const found = b.fresh("reap_found");
  const done = b.fresh("reap_done");
  // events[i] (argument 3).
  emitContext(b, key);
  loadSyscallArg(b, R0, 3, R3);
  b.emit(ldx("DW", R1, R10, b.loopIndex!), alu64("LSH", R1, imm(5)), alu64("ADD", R3, R1));
  b.emit(mov64(R1, R7), alu64("ADD", R1, imm(dst + REAP.event)));
  b.emit(mov64(R2, imm(IO_EVENT.size)), call("probe_read_user"));
  b.emit(ldx("DW", R3, R7, dst + REAP.event + IO_EVENT.obj));
  emitKey(b, key);
  b.emit(ldx("DW", R0, R10, key), stx("W", R7, dst + REAP.pid, R0));
  const missing = b.fresh("reap_unmatched");
  emitTake(b, TABLE, key, (base, off) => {
    for (let w = 0; w < RECORD.size; w += 8) {
      b.emit(ldx("DW", R1, base, off + w), stx("DW", R7, dst + REAP.submitted + w, R1));
    }
  }, missing);
  b.emit(ja(found)).mark(missing);
  b.emit(st("DW", R7, dst + REAP.latency, -1), st("DW", R7, dst + REAP.op, 0));
  b.increment(ctx.counters, counter(ctx, "unmatched")).emit(ja(done)).mark(found);
  const record = (field: number) => dst + REAP.submitted + field;
  b.emit(ldx("DW", R1, R7, record(RECORD.time)), mov64(R2, R9), alu64("SUB", R2, R1));
  b.emit(stx("DW", R7, dst + REAP.latency, R2));
  b.emit(ldx("W", R1, R7, record(RECORD.fd)), stx("W", R7, dst + REAP.pid + 4, R1)); // beside the pid
  emitOpName(b, dst + REAP.op);
  b.mark(done);
}

/** The reap fields: the io_event, the request's submit record, latency, fd path. */
function reapFields(ctx: SiteContext): EventField[] {
  const whole = ["$reap"];
  const part = (
    name: string,
    offset: number,
    decoding: EventField["decoding"],
    transform?: EventField["transform"],
  ): EventField => ({
    path: [name],
    type: transform
      ? undefined
      : decoding.type === "string"
      ? { kind: "string", size: decoding.size }
      : decoding.type === "pointer"
      ? { kind: "int", signed: false, bigint: true }
      : { kind: "int", signed: decoding.type !== "int" || decoding.signed, bigint: false },
    decoding,
    size: 0,
    capture: () => {},
    partOf: { path: whole, offset },
    transform,
  });
  const u32 = { type: "int", size: 4, signed: false } as const;
  const s64 = { type: "int", size: 8, signed: true } as const;
  return [
    {
      path: whole,
      decoding: { type: "bytes", size: REAP.size },
      size: REAP.size,
      capture: (b, dst) => emitReap(b, ctx, dst),
      perElement: true,
    },
    part("data", REAP.event + IO_EVENT.data, { type: "pointer" }),
    part("iocb", REAP.event + IO_EVENT.obj, { type: "pointer" }),
    part("res", REAP.event + IO_EVENT.res, s64),
    part("res2", REAP.event + IO_EVENT.res2, s64),
    part("fd", REAP.fd, { type: "int", size: 4, signed: true }),
    part("opcode", REAP.opcode, u32),
    part("op", REAP.op, { type: "string", size: 8 }),
    part("bytes", REAP.nbytes, { type: "int", size: 8, signed: false }),
    part("offset", REAP.offset, s64),
    part("latencyNs", REAP.latency, { type: "latency" }),
    part("path", REAP.pid, { type: "bytes", size: 8 }, (bytes) => {
      const v = new DataView((bytes as Uint8Array).buffer);
      return fdPath(v.getUint32(0, true), v.getInt32(4, true));
    }),
  ];
}

/**
 * The reaping calls: one site each, one event per reaped request that was seen submitted.
 * io_submit reads the iocbs' contents only where a consumer reads them: a latency needs the
 * time alone.
 */
export function reapSites(ctx: SiteContext): ProbeSite[] {
  requireLoop();
  slotTable((spec) => ctx.map(spec), INFLIGHT, LAYOUT);
  ctx.map({ name: DESTROYED, type: "hash", keySize: 16, valueSize: 8, maxEntries: 1024 });
  const matched: Expr = {
    op: "compare",
    operator: "!=",
    left: { op: "field", path: ["latencyNs"], type: { kind: "int", signed: true, bigint: false } },
    right: { op: "const", value: -1n, type: { kind: "int", signed: true, bigint: false } },
    type: { kind: "bool" },
  };
  return ["io_getevents", "io_pgetevents"].map((syscall, i): ProbeSite => {
    const hook = {
      name: `aio_reap_${i}`,
      type: "tracepoint" as const,
      attach: exitAttach(syscall),
      repeat: reapRounds(ctx),
    };
    return {
      name: "aio:reap",
      fields: [...headerFields(), ...reapFields(ctx)],
      constants: [{ path: ["probe"], constant: "aio:reap" }],
      hook,
      companions: [],
      requires: [matched],
      tick: sweep,
      // The other reaping call's site has the same consumers, and shares these.
      fit: (read) => ({
        hook,
        companions: i > 0 ? [] : [
          submitRecorder(ctx, FROM_IOCB.some((f) => read.has(f))),
          cancelRecorder(ctx),
          destroyRecorder(),
        ],
      }),
    };
  });
}
