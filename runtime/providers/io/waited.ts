/**
 * The I/O a waiting thread waits for. The scheduler does not say, so each bio is recorded when
 * it is queued (`block_bio_queue`) under the thread that will wait for it, with how that
 * thread is known (`association`):
 *
 * - `"exact"`: the bio itself names its waiter, and the bio was still in flight when the wait
 *   began. A bio names its waiter when the thread that submitted it sleeps until it completes:
 *   `submit_bio_wait()` (synchronous bios: the submitter), block-device direct I/O of one bio
 *   (`bi_private` is the waiting task, before Linux 6.6) and iomap direct I/O of ext4, xfs and
 *   others (`iomap_dio.submit.waiter`, set only for synchronous I/O).
 * - `"inferred"`: any other bio (page-cache reads, buffer heads) is recorded under the thread
 *   that submitted it, and a wait within a second of it is taken to be for it. A synchronous
 *   read submits, then waits for what it submitted, so the common case is right; a thread that
 *   waits on someone else's I/O (a page another thread is reading in) is misattributed.
 * - `"none"`: the thread submitted nothing in the last second, or its last exact I/O had
 *   completed before the wait began; `buf`, `dev` and `file` are zeros and `<none>`.
 *
 * Exactness is checked when the wait begins (wait-start); wait-done carries what its
 * wait-start found.
 *
 * @module
 */
import {
  alu32,
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
  R7,
  R8,
  R9,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { attachRawTracepoint } from "../../../bpf/link.ts";
import { blockDevice } from "../../../system/block_devices.ts";
import { ksymAddress } from "../../../system/kallsyms.ts";
import type { Program } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field } from "../../codegen/fields.ts";
import { probeProgram, stateValueSize } from "../../codegen/probe_program.ts";
import { readMember } from "../../codegen/struct_read.ts";
import type { ProgramPlan, SiteContext } from "../provider.ts";
import { emitFlags } from "./bufinfo.ts";
import { emitInode, fileFields, fileSlots, MOUNTS_MAP } from "./fileinfo.ts";
import { loadRoot, loadWord, SOURCES } from "./source.ts";

const LAST_MAP = "io_last";
const PENDING_MAP = "io_waited_pending";
/**
 * The words of a recorded I/O, after its submit time in the last-I/O map; a wait's snapshot of
 * it (the wait state) has the same words, with `how` then the association.
 */
const WORD = {
  dev: 0,
  sector: 1,
  bytes: 2,
  flags: 3,
  inode: 4,
  offset: 5,
  bio: 6,
  how: 7,
} as const;
/** Words of a recorded I/O. */
export const WAITED_WORDS = 8;
/** A wait this long after the thread's last inferred submit is not taken to be for it. */
const FRESH_NS = 1_000_000_000;

/** How a wait's I/O is known, as `how` holds it. */
const NONE = 0;
const EXACT = 1;
const INFERRED = 2;
/** How a wait event's `buf`, `dev` and `file` were associated with the wait (see the module). */
export type Association = "none" | "exact" | "inferred";
const ASSOCIATION: readonly Association[] = ["none", "exact", "inferred"];

/** Completion functions of bios that name their waiting task, and where it is. */
function waiterKinds(): Array<{ endIo: bigint; waiter: (b: ProgramBuilder) => void }> {
  const bio = SOURCES.bioStart;
  const kinds = [
    {
      name: "submit_bio_wait_endio",
      // The submitter waits: `submit_bio_wait()` queues the bio in its own context.
      waiter: (b: ProgramBuilder) => b.emit(call("get_current_task")),
    },
    {
      name: "blkdev_bio_end_io_simple",
      waiter: (b: ProgramBuilder) => {
        loadRoot(b, bio, R1);
        readMember(b, R1, "bio", "bi_private", R0);
      },
    },
    {
      name: "iomap_dio_bio_end_io",
      waiter: (b: ProgramBuilder) => {
        loadRoot(b, bio, R1);
        readMember(b, R1, "bio", "bi_private", R0);
        b.emit(mov64(R1, R0));
        readMember(b, R1, "iomap_dio", "submit.waiter", R0);
      },
    },
  ];
  return kinds.flatMap((k) => {
    const endIo = ksymAddress(k.name);
    return endIo === undefined ? [] : [{ endIo, waiter: k.waiter }];
  });
}

/**
 * The programs keeping each thread's last I/O: at a bio's queueing, under its waiter (exact)
 * or its submitter (inferred); at its completion, off the list of exact I/O in flight.
 */
export function lastSubmitRecorders(ctx: SiteContext): ProgramPlan[] {
  const map = ctx.map({
    name: LAST_MAP,
    type: "lru_hash",
    keySize: 8,
    valueSize: stateValueSize(WAITED_WORDS),
    maxEntries: 16384,
  });
  // LRU: a completion never seen (the session started after the queueing) ages out.
  const pending = ctx.map({
    name: PENDING_MAP,
    type: "lru_hash",
    keySize: 8,
    valueSize: 8,
    maxEntries: 16384,
  });
  const src = SOURCES.bioStart;
  let how = 0;
  /** The waiter's `pid_tgid` in R0; its kind (exact, inferred) in the stack slot `how`. */
  const key = (b: ProgramBuilder) => {
    how = b.alloc(8);
    const task = b.alloc(8);
    const tgid = b.alloc(8);
    const current = b.fresh("submitter_waits");
    const found = b.fresh("waiter_known");
    const done = b.fresh("waiter_keyed");
    b.emit(st("DW", R10, how, INFERRED));
    loadRoot(b, src, R1);
    readMember(b, R1, "bio", "bi_end_io", R0);
    b.emit(stx("DW", R10, task, R0));
    for (const k of waiterKinds()) {
      const next = b.fresh("other_end_io");
      b.emit(ldx("DW", R0, R10, task), ldImm64(R1, k.endIo), jmp("JNE", R0, R1, next));
      k.waiter(b);
      // A NULL waiter (asynchronous direct I/O) waits for nobody in particular.
      b.emit(jmp("JEQ", R0, imm(0), current), ja(found)).mark(next);
    }
    b.emit(ja(current)).mark(found);
    b.emit(stx("DW", R10, task, R0), st("DW", R10, how, EXACT), mov64(R1, R0));
    readMember(b, R1, "task_struct", "tgid", R0);
    b.emit(alu64("LSH", R0, imm(32)), stx("DW", R10, tgid, R0), ldx("DW", R1, R10, task));
    readMember(b, R1, "task_struct", "pid", R0);
    b.emit(alu32("MOV", R0, R0), ldx("DW", R1, R10, tgid), alu64("OR", R0, R1), ja(done));
    b.mark(current).emit(call("get_current_pid_tgid")).mark(done);
  };
  return [{
    name: "io_wait_last",
    type: "raw_tracepoint",
    instructions: probeProgram({
      filter: ctx.filter,
      scratch: ctx.scratch,
      state: {
        map,
        mode: "save",
        capacity: WAITED_WORDS,
        words: WAITED_WORDS,
        key,
        fill: (b, at) => {
          for (const w of ["dev", "sector", "bytes"] as const) {
            loadWord(b, src, w, R0);
            b.emit(stx("DW", R10, at + 8 * WORD[w], R0));
          }
          // b_flags goes through the record (R7), where emitFlags writes.
          emitFlags(b, src, 8);
          b.emit(ldx("DW", R0, R7, 8), stx("DW", R10, at + 8 * WORD.flags, R0));
          const slots = fileSlots(b);
          emitInode(b, src, slots);
          b.emit(ldx("DW", R0, R10, slots.inode), stx("DW", R10, at + 8 * WORD.inode, R0));
          b.emit(ldx("DW", R0, R10, slots.offset), stx("DW", R10, at + 8 * WORD.offset, R0));
          loadRoot(b, src, R0);
          b.emit(stx("DW", R10, at + 8 * WORD.bio, R0));
          b.emit(ldx("DW", R0, R10, how), stx("DW", R10, at + 8 * WORD.how, R0));
          // An exact I/O is in flight until its completion takes it off.
          const inexact = b.fresh("inexact");
          b.emit(jmp("JNE", R0, imm(EXACT), inexact));
          b.update(pending, at + 8 * WORD.bio, at + 8 * WORD.how).mark(inexact);
        },
      },
    }),
    attach: (p: Program) => attachRawTracepoint(p, src.tracepoint),
  }, {
    name: "io_wait_iodone",
    type: "raw_tracepoint",
    instructions: probeProgram({
      filter: {},
      body: (b) => {
        const key = b.alloc(8);
        loadRoot(b, SOURCES.bioDone, R0);
        b.emit(stx("DW", R10, key, R0), ldMap(R1, pending));
        b.stackPtr(R2, key).emit(call("map_delete_elem"));
      },
    }),
    attach: (p: Program) => attachRawTracepoint(p, SOURCES.bioDone.tracepoint),
  }];
}

/**
 * `R0 =` the words of the I/O the thread whose `pid_tgid` `subject` leaves in R0 waits for,
 * with `how` its association, or 0 when none (see the module).
 */
export function emitWaited(b: ProgramBuilder, subject: (b: ProgramBuilder) => void): void {
  const key = b.alloc(8);
  const rec = b.alloc(8);
  const none = b.fresh("waited_none");
  const found = b.fresh("waited_found");
  subject(b);
  b.emit(stx("DW", R10, key, R0), ldMap(R1, LAST_MAP));
  b.stackPtr(R2, key).emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), none));
  b.emit(stx("DW", R10, rec, R0), ldx("DW", R1, R0, 8 + 8 * WORD.how));
  const inferred = b.fresh("inferred");
  b.emit(jmp("JNE", R1, imm(EXACT), inferred));
  // Exact only while in flight: else the thread waits for something it did not submit.
  b.emit(ldx("DW", R1, R0, 8 + 8 * WORD.bio), stx("DW", R10, key, R1), ldMap(R1, PENDING_MAP));
  b.stackPtr(R2, key).emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), none), ja(found));
  b.mark(inferred);
  b.emit(ldx("DW", R0, R10, rec), ldx("DW", R1, R0, 0), mov64(R2, R9), alu64("SUB", R2, R1));
  b.emit(jmp("JGT", R2, imm(FRESH_NS), none)).mark(found);
  const done = b.fresh("waited_done");
  b.emit(ldx("DW", R0, R10, rec), alu64("ADD", R0, imm(8)), ja(done));
  b.mark(none).emit(mov64(R0, imm(0))).mark(done);
}

/** `R0 =` the wait state's snapshot of the waited I/O (R8 + 8), or 0 without state. */
export function waitedFromState(b: ProgramBuilder): void {
  const none = b.fresh("no_wait_state");
  b.emit(mov64(R0, R8), jmp("JEQ", R0, imm(0), none), alu64("ADD", R0, imm(8))).mark(none);
}

/** Fills the wait state's words at R10 + `at`: the waited I/O's words, zeros without one. */
export function fillWaited(b: ProgramBuilder, at: number): void {
  const none = b.fresh("nothing_waited");
  const done = b.fresh("waited_filled");
  emitWaited(b, (b) => b.emit(call("get_current_pid_tgid")));
  b.emit(jmp("JEQ", R0, imm(0), none));
  for (let w = 0; w < WAITED_WORDS; w++) {
    b.emit(ldx("DW", R1, R0, 8 * w), stx("DW", R10, at + 8 * w, R1));
  }
  b.emit(ja(done)).mark(none);
  for (let w = 0; w < WAITED_WORDS; w++) b.emit(st("DW", R10, at + 8 * w, 0));
  b.mark(done);
}

/**
 * The `buf`, `dev` and `file` fields of a wait event and its `association`, from the words
 * `words` leaves a pointer to in R0 (0 for none).
 */
export function waitedFields(words: (b: ProgramBuilder) => void): EventField[] {
  const word =
    (w: keyof typeof WORD, shape = (_: ProgramBuilder) => {}, missing = 0) =>
    (b: ProgramBuilder, dst: number) => {
      const none = b.fresh("none");
      const done = b.fresh("word");
      words(b);
      b.emit(jmp("JEQ", R0, imm(0), none), ldx("DW", R0, R0, 8 * WORD[w]));
      shape(b);
      b.emit(stx("DW", R7, dst, R0), ja(done)).mark(none);
      b.emit(st("DW", R7, dst, missing)).mark(done);
    };
  const u64 = { type: "int", size: 8, signed: false } as const;
  const dev = (d: unknown) => blockDevice(Number(d));
  const minor = (b: ProgramBuilder) => b.emit(alu64("AND", R0, imm(0xfffff)));
  const jsOnly = (f: EventField, transform: (d: unknown) => unknown): EventField => ({
    ...f,
    type: undefined,
    transform,
  });
  return [
    jsOnly(
      field(["association"], u64, word("how", undefined, NONE)),
      (how) => ASSOCIATION[Number(how)] ?? "none",
    ),
    field(["buf", "b_flags"], u64, word("flags")),
    field(["buf", "b_bcount"], u64, word("bytes")),
    field(["buf", "b_bufsize"], u64, word("bytes")),
    field(["buf", "b_blkno"], u64, word("sector")),
    field(["buf", "b_lblkno"], u64, word("sector")),
    field(["buf", "b_edev"], u64, word("dev")),
    field(["dev", "dev_major"], u64, word("dev", (b) => b.emit(alu64("RSH", R0, imm(20))))),
    field(["dev", "dev_minor"], u64, word("dev", minor)),
    field(["dev", "dev_instance"], u64, word("dev", minor)),
    jsOnly(field(["dev", "dev_name"], u64, word("dev")), (d) => dev(d)?.driver ?? "<none>"),
    jsOnly(field(["dev", "dev_statname"], u64, word("dev")), (d) => dev(d)?.name ?? "<none>"),
    jsOnly(field(["dev", "dev_pathname"], u64, word("dev")), (d) => dev(d)?.path ?? "<none>"),
    ...fileFields((b, slots) => {
      const none = b.fresh("no_inode");
      b.emit(st("DW", R10, slots.inode, 0), st("DW", R10, slots.offset, -1));
      words(b);
      b.emit(jmp("JEQ", R0, imm(0), none));
      b.emit(ldx("DW", R1, R0, 8 * WORD.inode), stx("DW", R10, slots.inode, R1));
      b.emit(ldx("DW", R1, R0, 8 * WORD.offset), stx("DW", R10, slots.offset, R1));
      b.mark(none);
    }, MOUNTS_MAP.name),
  ];
}
