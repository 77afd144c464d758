/**
 * DTrace's `bufinfo_t` for Linux block I/O, as `event.buf`. Adaptations (also in the README):
 *
 * - `b_flags`: B_READ for reads; B_WRITE for writes (and zone appends, write-zeroes); neither
 *   for flushes and discards. B_ASYNC for writes without REQ_SYNC (writeback) and readahead
 *   reads: no thread waits for those. B_PAGEIO when the first page is in a page cache (a
 *   file's or a block device's), B_PHYS when it is user memory (direct I/O). B_ERROR at done
 *   on failure. B_DONE is never set: done fires before completion processing, as in DTrace.
 * - `b_blkno` and `b_lblkno` are both the device sector (512 bytes): Linux has one numbering.
 * - `b_resid` at done: the bytes this completion did not transfer; all of them on failure.
 * - `b_error`: the errno of the block status (EIO, ENOSPC, ...), 0 on success and at start.
 * - `b_iodone`: the bio's completion function, as a kernel symbol name (a string).
 *
 * @module
 */
import {
  alu64,
  imm,
  ja,
  jmp,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R6,
  R7,
  type Reg,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { ksymName } from "../../../system/kallsyms.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field } from "../../codegen/fields.ts";
import { emitFolio } from "./page.ts";
import { type IoSource, loadBio, loadRoot, loadWord, readAt } from "./source.ts";

/** `b_flags` bits, with illumos' values. */
export const B = {
  B_DONE: 0x0002,
  B_ERROR: 0x0004,
  B_PAGEIO: 0x0010,
  B_PHYS: 0x0020,
  B_READ: 0x0040,
  B_WRITE: 0x0100,
  B_ASYNC: 0x0400,
} as const;

/** DTrace's bufinfo_t. */
export interface BufInfo {
  /** B_READ, B_WRITE, B_ASYNC, B_PAGEIO, B_PHYS, B_ERROR (see `B`). */
  b_flags: number;
  /** Bytes to transfer. */
  b_bcount: number;
  /** The first page of the I/O (`struct page *`). */
  b_addr: bigint;
  /** Device sector (512-byte units). */
  b_blkno: number;
  /** The same: Linux has one block numbering. */
  b_lblkno: number;
  /** Bytes not transferred (done). */
  b_resid: number;
  /** Bytes of the buffer: b_bcount. */
  b_bufsize: number;
  /** The completion function's symbol, e.g. "end_bio_bh_io_sync". */
  b_iodone: string;
  /** errno on failure (done), else 0. */
  b_error: number;
  /** The device number as the kernel encodes it (major << 20 | minor). */
  b_edev: number;
}

// REQ_OP_* (the low 8 bits of the op and flags word) and REQ_* flag bits: ABI-stable.
const REQ_OP_MASK = 0xff;
const REQ_OP_READ = 0;
const WRITE_OPS = [1, 5, 9]; // WRITE, ZONE_APPEND, WRITE_ZEROES
const REQ_SYNC = 1 << 11;
const REQ_RAHEAD = 1 << 19;

/** blk_status_t codes and the errno each stands for (blk_status_to_errno). */
const STATUS_ERRNO: ReadonlyArray<[number, number]> = [
  [1, 95], // NOTSUPP: EOPNOTSUPP
  [2, 110], // TIMEOUT: ETIMEDOUT
  [3, 28], // NOSPC: ENOSPC
  [4, 67], // TRANSPORT: ENOLINK
  [5, 121], // TARGET: EREMOTEIO
  [6, 52], // RESV_CONFLICT: EBADE
  [7, 61], // MEDIUM: ENODATA
  [8, 84], // PROTECTION: EILSEQ
  [9, 12], // RESOURCE: ENOMEM
  [10, 5], // IOERR: EIO
  [12, 11], // AGAIN: EAGAIN
  [13, 16], // DEV_RESOURCE: EBUSY
];

/** `reg = errno of the I/O's completion status` (0 at start). Clobbers R0-R5. */
function loadErrno(b: ProgramBuilder, src: IoSource, reg: Reg): void {
  if (!src.done) {
    b.emit(mov64(reg, imm(0)));
    return;
  }
  if (src.level === "rq") b.emit(ldx("DW", R2, R6, 8)); // block_rq_complete's error argument
  else {
    loadRoot(b, src, R1);
    readAt(b, src, R1, "bio", "bi_status", R2);
  }
  const done = b.fresh("errno");
  b.emit(alu64("AND", R2, imm(0xff)), mov64(reg, imm(0)), jmp("JEQ", R2, imm(0), done));
  for (const [status, errno] of STATUS_ERRNO) {
    b.emit(mov64(reg, imm(errno)), jmp("JEQ", R2, imm(status), done));
  }
  b.emit(mov64(reg, imm(5))).mark(done); // anything newer: EIO
}

/** ORs `flag` into the u64 at R7 + `dst`. */
function setFlag(b: ProgramBuilder, dst: number, flag: number): void {
  b.emit(ldx("DW", R0, R7, dst), alu64("OR", R0, imm(flag)), stx("DW", R7, dst, R0));
}

/** Computes `b_flags` into the u64 at R7 + `dst`. */
export function emitFlags(b: ProgramBuilder, src: IoSource, dst: number): void {
  const async = b.fresh("async");
  const typed = b.fresh("typed");
  const notRead = b.fresh("not_read");
  // R0 = op and flags, R1 = op, R2 = the flags so far.
  loadWord(b, src, "opf", R0);
  b.emit(mov64(R1, R0), alu64("AND", R1, imm(REQ_OP_MASK)), mov64(R2, imm(0)));
  b.emit(jmp("JNE", R1, imm(REQ_OP_READ), notRead), mov64(R2, imm(B.B_READ)));
  b.emit(jmp("JSET", R0, imm(REQ_RAHEAD), async), ja(typed)).mark(notRead);
  for (const op of WRITE_OPS) {
    const next = b.fresh("op");
    b.emit(jmp("JNE", R1, imm(op), next), mov64(R2, imm(B.B_WRITE)));
    b.emit(jmp("JSET", R0, imm(REQ_SYNC), typed), ja(async)).mark(next);
  }
  b.emit(ja(typed)).mark(async).emit(alu64("OR", R2, imm(B.B_ASYNC)));
  b.mark(typed).emit(stx("DW", R7, dst, R2));
  // Page cache or user memory: the mapping of the first page's folio.
  const slots = emitFolio(b, src);
  const noPage = b.fresh("no_page");
  const phys = b.fresh("phys");
  b.emit(ldx("DW", R0, R10, slots.mapping), jmp("JEQ", R0, imm(0), noPage));
  b.emit(jmp("JSET", R0, imm(1), phys));
  setFlag(b, dst, B.B_PAGEIO);
  b.emit(ja(noPage)).mark(phys);
  setFlag(b, dst, B.B_PHYS);
  b.mark(noPage);
  if (src.done) {
    const ok = b.fresh("no_error");
    loadErrno(b, src, R0);
    b.emit(jmp("JEQ", R0, imm(0), ok));
    setFlag(b, dst, B.B_ERROR);
    b.mark(ok);
  }
}

const INT = (signed = false) => ({ type: "int", size: 8, signed }) as const;

/** The `buf` fields of an io site. */
export function bufFields(src: IoSource): EventField[] {
  const word = (what: "bytes" | "sector" | "dev") => (b: ProgramBuilder, dst: number) => {
    loadWord(b, src, what, R0);
    b.emit(stx("DW", R7, dst, R0));
  };
  const bioMember = (path: string) => (b: ProgramBuilder, dst: number) => {
    loadBio(b, src, R1);
    readAt(b, src, R1, "bio", path, R0);
    b.emit(stx("DW", R7, dst, R0));
  };
  const resid = (b: ProgramBuilder, dst: number) => {
    if (!src.done) return void b.emit(st("DW", R7, dst, 0));
    // A failed completion transferred none of the bytes it had left (block_rq_complete
    // reports a failed request's bytes as "completed", with the error).
    const ok = b.fresh("resid_ok");
    const done = b.fresh("resid_done");
    loadErrno(b, src, R0);
    b.emit(jmp("JEQ", R0, imm(0), ok));
    loadWord(b, src, "bytes", R0);
    b.emit(stx("DW", R7, dst, R0), ja(done)).mark(ok);
    if (src.level === "rq") {
      // Of the bytes left before this completion, those it did not complete.
      loadWord(b, src, "bytes", R0);
      b.emit(ldx("DW", R1, R6, 16), alu64("SUB", R0, R1)); // block_rq_complete's nr_bytes
      b.emit(stx("DW", R7, dst, R0));
    } else {
      loadRoot(b, src, R1);
      readAt(b, src, R1, "bio", "bi_iter.bi_size", R0);
      b.emit(stx("DW", R7, dst, R0));
    }
    b.mark(done);
  };
  const f = (name: keyof BufInfo, ...rest: [Parameters<typeof field>[1], EventField["capture"]]) =>
    field(["buf", name], ...rest, 8);
  return [
    f("b_flags", INT(), (b, dst) => emitFlags(b, src, dst)),
    f("b_bcount", INT(), word("bytes")),
    f("b_addr", { type: "pointer" }, bioMember("bi_io_vec->bv_page")),
    f("b_blkno", INT(), word("sector")),
    f("b_lblkno", INT(), word("sector")),
    f("b_resid", INT(true), resid),
    f("b_bufsize", INT(), word("bytes")),
    {
      ...f("b_iodone", { type: "pointer" }, bioMember("bi_end_io")),
      type: undefined,
      transform: (addr) => ksymName(addr as bigint) ?? `0x${(addr as bigint).toString(16)}`,
    },
    f("b_error", INT(true), (b, dst) => {
      loadErrno(b, src, R0);
      b.emit(stx("DW", R7, dst, R0));
    }),
    f("b_edev", INT(), word("dev")),
  ];
}
