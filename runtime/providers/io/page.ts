/**
 * The memory an I/O moves: the first page of its bio, the folio holding that page, and the
 * folio's mapping, which tells page-cache I/O (a file's or a block device's cache) from
 * direct I/O to user memory (an anonymous mapping).
 *
 * @module
 */
import { alu64, imm, ja, jmp, ldx, mov64, R0, R1, R10, st, stx } from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { readMember } from "../../codegen/struct_read.ts";
import { type IoSource, loadBio } from "./source.ts";

/** Where {@link emitFolio} leaves its results, as stack offsets. */
export interface FolioSlots {
  /** The first `struct page *` of the bio (0 when the bio has no data). */
  page: number;
  /** The folio holding it. */
  folio: number;
  /** The folio's `struct address_space *` with its low tag bits (1: anonymous). */
  mapping: number;
}

/** Stores the bio's first page, its folio and the folio's mapping in stack slots. */
export function emitFolio(b: ProgramBuilder, src: IoSource): FolioSlots {
  const slots = { page: b.alloc(8), folio: b.alloc(8), mapping: b.alloc(8) };
  const done = b.fresh("folio_done");
  const head = b.fresh("folio_head");
  for (const s of Object.values(slots)) b.emit(st("DW", R10, s, 0));
  loadBio(b, src, R1);
  readMember(b, R1, "bio", "bi_io_vec->bv_page", R0);
  b.emit(stx("DW", R10, slots.page, R0), jmp("JEQ", R0, imm(0), done));
  // A tail page names its folio in compound_head, tagged with bit 0.
  b.emit(mov64(R1, R0));
  readMember(b, R1, "page", "compound_head", R0);
  b.emit(jmp("JSET", R0, imm(1), head), ldx("DW", R0, R10, slots.page), ja(done));
  b.mark(head).emit(alu64("SUB", R0, imm(1)));
  b.mark(done).emit(stx("DW", R10, slots.folio, R0), jmp("JEQ", R0, imm(0), `${done}_m`));
  b.emit(mov64(R1, R0));
  readMember(b, R1, "folio", "mapping", R0);
  b.emit(stx("DW", R10, slots.mapping, R0)).mark(`${done}_m`);
  return slots;
}
