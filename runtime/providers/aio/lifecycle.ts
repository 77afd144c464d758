/**
 * Each AIO request from submit to reap, in the kernel. io_submit's return records the first
 * `ret` iocbs it took (a partial submit takes only those) in a hash keyed by {tgid, ctx_id,
 * iocb address} (applications reuse `aio_data`, never a live iocb); the return of io_getevents
 * or io_pgetevents finds each reaped io_event's iocb there, times it and deletes it: the
 * `aio:reap` event. A successful io_cancel deletes its request; io_destroy marks its context,
 * and the session removes that context's requests, and those of processes that exited, about
 * once a second.
 *
 * The time runs from io_submit's return to the reaping call's return, as fio's clat does.
 * Requests reaped from the mapped ring in user space (no io_getevents) are never reaped here:
 * the counters show submits without reaps, which recipes report as a blind spot.
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
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
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
import { type EventField, headerFields } from "../../codegen/fields.ts";
import {
  emitEach,
  probeProgram,
  type Rounds,
  stateValueSize,
  type ThreadState,
} from "../../codegen/probe_program.ts";
import type { Expr } from "../../lambda/ir.ts";
import type { ProbeSite, ProgramPlan, SiteContext } from "../provider.ts";
import { tracepointFormat } from "../tracepoint.ts";
import { fdPath, forgetPaths, IO_EVENT, IOCB, OPCODES } from "./abi.ts";
import { loadArg } from "./decoded.ts";

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

/** Key {tgid, ctx_id, iocb}; value {submit time, fd (u32) and opcode (u32), nbytes, offset}. */
const KEY_SIZE = 24;
const VALUE_SIZE = 32;

const ARGS = "aio_args";
/** The AIO syscalls' arguments, saved per thread at entry for the return. */
const SAVED_ARGS: ThreadState = { map: ARGS, mode: "load", capacity: 6, required: true };

/** The program saving a syscall's six argument words at its entry. */
function argsSaver(name: string, syscall: string, ctx: SiteContext): ProgramPlan {
  const enter = tracepointFormat("syscalls", `sys_enter_${syscall}`);
  ctx.map({
    name: ARGS,
    type: "lru_hash",
    keySize: 8,
    valueSize: stateValueSize(6),
    maxEntries: 16384,
  });
  return {
    name,
    type: "tracepoint",
    // The arguments are what the returns need; no one reads this entry's time.
    instructions: probeProgram({
      filter: ctx.filter,
      state: { ...SAVED_ARGS, mode: "save", ctxOffset: 16, words: 6 },
      time: false,
    }),
    attach: (p: Program) => attachTracepoint(p, enter.id, `syscalls:sys_enter_${syscall}`),
  };
}

/** Attaches to a syscall's return. */
function exitAttach(syscall: string): (p: Program) => ReturnType<typeof attachTracepoint> {
  const exit = tracepointFormat("syscalls", `sys_exit_${syscall}`);
  return (p) => attachTracepoint(p, exit.id, `syscalls:sys_exit_${syscall}`);
}

/** A syscall's entry saver and a return program that gets its arguments in R8. */
function onReturn(
  name: string,
  syscall: string,
  ctx: SiteContext,
  body: (b: ProgramBuilder) => void,
): ProgramPlan[] {
  return [argsSaver(`${name}_e`, syscall, ctx), {
    name: `${name}_r`,
    type: "tracepoint",
    instructions: probeProgram({ filter: ctx.filter, state: SAVED_ARGS, body }),
    attach: exitAttach(syscall),
  }];
}

/** Writes the key {tgid, ctx_id (argument 0), iocb (in R3)} at R10 + `key`. */
function emitKey(b: ProgramBuilder, key: number): void {
  b.emit(stx("DW", R10, key + 16, R3), call("get_current_pid_tgid"), alu64("RSH", R0, imm(32)));
  b.emit(stx("DW", R10, key, R0));
  loadArg(b, "state", 0, R0);
  b.emit(stx("DW", R10, key + 8, R0));
}

/** io_submit's return: records the first `ret` iocbs. */
function submitRecorder(ctx: SiteContext): ProgramPlan[] {
  return onReturn("aio_submit", "io_submit", ctx, (b) => {
    const n = b.alloc(8);
    const end = b.fresh("submit_end");
    b.emit(ldx("DW", R0, R6, RET), jmp("JSLE", R0, imm(0), end), stx("DW", R10, n, R0));
    b.increment(ctx.counters, counter(ctx, "submitted"), n);
    emitEach(b, { state: SAVED_ARGS }, rounds(ctx), (b) => recordSubmit(b, ctx));
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

/** Records submitted iocb i in the in-flight map. */
function recordSubmit(b: ProgramBuilder, ctx: SiteContext): void {
  const counters = ctx.counters;
  const iocb = b.alloc(IOCB.size);
  const key = b.alloc(KEY_SIZE);
  const value = b.alloc(VALUE_SIZE);
  b.emit(mov64(R3, imm(0)));
  emitKey(b, key);
  // The iocb pointer iocbpp[i], then the iocb it points to.
  b.emit(ldx("DW", R1, R10, b.loopIndex!));
  loadArg(b, "state", 2, R3);
  b.emit(alu64("LSH", R1, imm(3)), alu64("ADD", R3, R1));
  b.stackPtr(R1, key + 16).emit(mov64(R2, imm(8)), call("probe_read_user"));
  // The iocb up to its offset: all the record needs.
  b.stackPtr(R1, iocb).emit(mov64(R2, imm(IOCB.offset + 8)), ldx("DW", R3, R10, key + 16));
  b.emit(call("probe_read_user"));
  b.emit(
    stx("DW", R10, value, R9),
    ldx("W", R0, R10, iocb + IOCB.fd),
    stx("W", R10, value + 8, R0),
    ldx("H", R0, R10, iocb + IOCB.opcode),
    stx("W", R10, value + 12, R0),
    ldx("DW", R0, R10, iocb + IOCB.nbytes),
    stx("DW", R10, value + 16, R0),
    ldx("DW", R0, R10, iocb + IOCB.offset),
    stx("DW", R10, value + 24, R0),
  );
  b.insert(
    INFLIGHT,
    key,
    value,
    [counters, counter(ctx, "replaced")],
    [counters, counter(ctx, "lost")],
  );
}

/** io_cancel's return: a cancelled request will not be reaped. */
function cancelRecorder(ctx: SiteContext): ProgramPlan[] {
  return onReturn("aio_cancel", "io_cancel", ctx, (b) => {
    const key = b.alloc(KEY_SIZE);
    const end = b.fresh("cancel_end");
    b.emit(ldx("DW", R0, R6, RET), jmp("JNE", R0, imm(0), end));
    loadArg(b, "state", 1, R3);
    emitKey(b, key);
    b.emit(ldMap(R1, INFLIGHT)).stackPtr(R2, key).emit(call("map_delete_elem"));
    b.emit(jmp("JNE", R0, imm(0), end));
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
  const inflight = maps.get(INFLIGHT)!;
  const destroyed = maps.get(DESTROYED)!;
  let swept = 0;
  const dead = new Set<string>();
  for (const key of [...destroyed.keys()]) {
    const v = new DataView(key.buffer);
    dead.add(`${v.getBigUint64(0, true)}:${v.getBigUint64(8, true)}`);
    destroyed.delete(key);
  }
  const alive = new Map<bigint, boolean>();
  for (const key of [...inflight.keys()]) {
    const v = new DataView(key.buffer);
    const tgid = v.getBigUint64(0, true);
    if (!alive.has(tgid)) alive.set(tgid, pathExists(`/proc/${tgid}`));
    if (!alive.get(tgid) || dead.has(`${tgid}:${v.getBigUint64(8, true)}`)) {
      inflight.delete(key);
      swept++;
    }
  }
  return { [AIO_COUNTERS.swept]: swept, [AIO_COUNTERS.inflight]: [...inflight.keys()].length };
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
  b.emit(ldx("DW", R1, R10, b.loopIndex!), alu64("LSH", R1, imm(5)));
  loadArg(b, "state", 3, R3);
  b.emit(alu64("ADD", R3, R1), mov64(R1, R7), alu64("ADD", R1, imm(dst + REAP.event)));
  b.emit(mov64(R2, imm(IO_EVENT.size)), call("probe_read_user"));
  b.emit(ldx("DW", R3, R7, dst + REAP.event + IO_EVENT.obj));
  emitKey(b, key);
  b.emit(ldx("DW", R0, R10, key), stx("W", R7, dst + REAP.pid, R0));
  b.emit(ldMap(R1, INFLIGHT)).stackPtr(R2, key).emit(call("map_lookup_elem"));
  b.emit(jmp("JNE", R0, imm(0), found), st("DW", R7, dst + REAP.latency, -1));
  b.emit(st("DW", R7, dst + REAP.op, 0));
  b.increment(ctx.counters, counter(ctx, "unmatched")).emit(ja(done)).mark(found);
  for (let w = 0; w < VALUE_SIZE; w += 8) {
    b.emit(ldx("DW", R1, R0, w), stx("DW", R7, dst + REAP.submitted + w, R1));
  }
  b.emit(ldx("DW", R1, R0, 0), mov64(R2, R9), alu64("SUB", R2, R1));
  b.emit(stx("DW", R7, dst + REAP.latency, R2));
  b.emit(ldx("W", R1, R0, 8), stx("W", R7, dst + REAP.pid + 4, R1)); // the fd, beside the pid
  emitOpName(b, dst + REAP.op);
  b.emit(ldMap(R1, INFLIGHT)).stackPtr(R2, key).emit(call("map_delete_elem"));
  b.increment(ctx.counters, counter(ctx, "reaped")).mark(done);
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

/** The reaping calls: one site each, one event per reaped request that was seen submitted. */
export function reapSites(ctx: SiteContext): ProbeSite[] {
  requireLoop();
  ctx.map({
    name: INFLIGHT,
    type: "hash",
    keySize: KEY_SIZE,
    valueSize: VALUE_SIZE,
    maxEntries: 65536,
  });
  ctx.map({ name: DESTROYED, type: "hash", keySize: 16, valueSize: 8, maxEntries: 1024 });
  const recorders = [...submitRecorder(ctx), ...cancelRecorder(ctx), destroyRecorder()];
  const matched: Expr = {
    op: "compare",
    operator: "!=",
    left: { op: "field", path: ["latencyNs"], type: { kind: "int", signed: true, bigint: false } },
    right: { op: "const", value: -1n, type: { kind: "int", signed: true, bigint: false } },
    type: { kind: "bool" },
  };
  return ["io_getevents", "io_pgetevents"].map((syscall, i) => ({
    name: "aio:reap",
    fields: [...headerFields(), ...reapFields(ctx)],
    constants: [{ path: ["probe"], constant: "aio:reap" }],
    hook: {
      name: `aio_reap_${i}`,
      type: "tracepoint" as const,
      attach: exitAttach(syscall),
      state: SAVED_ARGS,
      repeat: rounds(ctx),
    },
    companions: [argsSaver(`aio_reap_${i}_e`, syscall, ctx), ...(i === 0 ? recorders : [])],
    requires: [matched],
    tick: sweep,
  }));
}
