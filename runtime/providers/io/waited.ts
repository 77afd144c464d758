/**
 * The I/O a waiting thread waits for, best effort: the scheduler does not say, so the last I/O
 * each thread submitted (at `block_bio_queue`, in the submitter's context) is kept per thread,
 * and a wait within a second of it carries that I/O's `buf`, `dev` and `file`. A synchronous
 * read or direct I/O submits, then waits for what it submitted: the common case is right. A
 * thread that waits on someone else's I/O (a page another thread is reading in) gets its own
 * last I/O, or none (`<none>`, zeros) when it submitted nothing in the last second.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  ja,
  jmp,
  ldMap,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R7,
  R9,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { attachRawTracepoint } from "../../../bpf/link.ts";
import { blockDevice } from "../../../system/block_devices.ts";
import type { Program } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field } from "../../codegen/fields.ts";
import { probeProgram, stateValueSize } from "../../codegen/probe_program.ts";
import type { ProgramPlan, SiteContext } from "../provider.ts";
import { emitFlags } from "./bufinfo.ts";
import { emitInode, fileFields, fileSlots, MOUNTS_MAP } from "./fileinfo.ts";
import { loadWord, SOURCES } from "./source.ts";

const LAST_MAP = "io_last";
/** The saved words after the submit time. */
const WORD = { dev: 0, sector: 1, bytes: 2, flags: 3, inode: 4, offset: 5 } as const;
const WORDS = 6;
/** A wait this long after the thread's last submit is not taken to be for it. */
const FRESH_NS = 1_000_000_000;

/** The program keeping each thread's last submitted I/O. */
export function lastSubmitRecorder(ctx: SiteContext): ProgramPlan {
  const map = ctx.map({
    name: LAST_MAP,
    type: "lru_hash",
    keySize: 8,
    valueSize: stateValueSize(WORDS),
    maxEntries: 16384,
  });
  const src = SOURCES.bioStart;
  return {
    name: "io_wait_last",
    type: "raw_tracepoint",
    instructions: probeProgram({
      filter: ctx.filter,
      scratch: ctx.scratch,
      state: {
        map,
        mode: "save",
        capacity: WORDS,
        words: WORDS,
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
        },
      },
    }),
    attach: (p: Program) => attachRawTracepoint(p, src.tracepoint),
  };
}

/**
 * `R0 =` the waiting thread's last-submit record, or 0 when there is none from the last
 * second; `subject` leaves the thread's `pid_tgid` in R0.
 */
function emitLast(b: ProgramBuilder, subject: (b: ProgramBuilder) => void): void {
  const key = b.alloc(8);
  const done = b.fresh("last");
  subject(b);
  b.emit(stx("DW", R10, key, R0), ldMap(R1, LAST_MAP));
  b.stackPtr(R2, key).emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), done));
  b.emit(ldx("DW", R1, R0, 0), mov64(R2, R9), alu64("SUB", R2, R1));
  b.emit(jmp("JLE", R2, imm(FRESH_NS), done), mov64(R0, imm(0))).mark(done);
}

/** The `buf`, `dev` and `file` fields of a wait event, from the thread's last submit. */
export function waitedFields(subject: (b: ProgramBuilder) => void): EventField[] {
  const word =
    (w: keyof typeof WORD, shape = (_: ProgramBuilder) => {}, missing = 0) =>
    (b: ProgramBuilder, dst: number) => {
      const none = b.fresh("none");
      const done = b.fresh("word");
      emitLast(b, subject);
      b.emit(jmp("JEQ", R0, imm(0), none), ldx("DW", R0, R0, 8 + 8 * WORD[w]));
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
      emitLast(b, subject);
      b.emit(jmp("JEQ", R0, imm(0), none));
      b.emit(ldx("DW", R1, R0, 8 + 8 * WORD.inode), stx("DW", R10, slots.inode, R1));
      b.emit(ldx("DW", R1, R0, 8 + 8 * WORD.offset), stx("DW", R10, slots.offset, R1));
      b.mark(none);
    }, MOUNTS_MAP.name),
  ];
}
