/**
 * Who submitted each I/O. A request's issue and completion often run in kernel workers, so the
 * submitter is kept where it is seen in its own context: at a bio's queueing, and at a
 * request's creation (`block_io_start`, or `block_getrq` before Linux 6.5), keyed by the I/O's
 * (first) bio. What is kept depends on what reads it:
 *
 * - the events' pid, tid or comm, or a process filter: every I/O's pid_tgid and comm, in an LRU
 *   map (a hint: an evicted entry loses one I/O its submitter);
 * - only the tracer's own processes left out (system-wide tracing): marks on their I/O alone
 *   (see `tracer_marks.ts`).
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  ja,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R7,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field } from "../../codegen/fields.ts";
import { type FilterSubject, stateValueSize } from "../../codegen/probe_program.ts";
import type { SiteContext } from "../provider.ts";
import { type IoSource, loadBio } from "./source.ts";
import { emitMark, markSubject, tracerMarks } from "./tracer_marks.ts";

/** What the programs of a site of one level do to know its I/O's submitter. */
export interface Submitters {
  /** Whose pid and comm the process filter checks. */
  subject?: FilterSubject;
  /**
   * Emits what a program where the submitter is seen keeps, from the I/O's bio as `at` reads
   * it (R6 is the context); may clobber R0-R5.
   */
  save?: (b: ProgramBuilder, at: IoSource) => void;
}

/** Value of a submitter entry: (unused time), pid_tgid, comm. */
const WORDS = 3;

/** The map of every I/O's submitter, by level. */
const submitterMap = (level: IoSource["level"]) => `io_submitter_${level}`;

/**
 * The submitter knowledge a site reading I/O at `site` needs: all of it where `read` names
 * pid, tid or comm (see {@link submitterHeader}) or the filter checks processes; the tracer's
 * marks where the filter only leaves the tracer out (marks of the site's own, named after its
 * `side`, which it removes); none otherwise.
 */
export function submitters(
  ctx: SiteContext,
  level: IoSource["level"],
  site: IoSource,
  read: ReadonlySet<string>,
  side: "start" | "done",
): Submitters {
  const filter = ctx.filter;
  const header = ["pid", "tid", "comm"].some((f) => read.has(f));
  if (header || filter.pidsMap || filter.comm !== undefined) {
    const map = ctx.map({
      name: submitterMap(level),
      type: "lru_hash",
      keySize: 8,
      valueSize: stateValueSize(WORDS),
      maxEntries: 65536,
    });
    return { subject: everyone(site, map), save: (b, at) => saveSubmitter(b, at, map) };
  }
  const tracer = filter.exclude ?? [];
  if (!tracer.length) return {};
  // Marks of this site's own, so that its look at an I/O is the last and removes them.
  const marks = tracerMarks(ctx, `io_tracer_${side}_${level}`);
  return { subject: markSubject(site, marks), save: (b, at) => emitMark(b, marks, at, tracer) };
}

/** Saves the submitter's pid_tgid and comm in `map` by the I/O's bio. */
function saveSubmitter(b: ProgramBuilder, at: IoSource, map: string): void {
  const key = b.alloc(8);
  const value = b.alloc(stateValueSize(WORDS));
  loadBio(b, at, R0);
  b.emit(stx("DW", R10, key, R0), st("DW", R10, value, 0));
  b.emit(call("get_current_pid_tgid"), stx("DW", R10, value + 8, R0));
  b.currentComm(R10, value + 16);
  b.update(map, key, value);
}

/**
 * Looks up the entry of the I/O `src` is about in `map`; runs `found` with R0 at the value, or
 * `missing`.
 */
function withEntry(
  b: ProgramBuilder,
  src: IoSource,
  map: string,
  found: () => void,
  missing: () => void,
): void {
  const key = b.alloc(8);
  const none = b.fresh("no_submitter");
  const done = b.fresh("submitter_done");
  loadBio(b, src, R0);
  b.emit(stx("DW", R10, key, R0));
  b.lookup(map, key, none);
  found();
  b.emit(ja(done)).mark(none);
  missing();
  b.mark(done);
}

/** The filter subject from every I/O's submitter: pid 0 and no comm when not seen. */
function everyone(src: IoSource, map: string): FilterSubject {
  return {
    pidTgid: (b) =>
      withEntry(
        b,
        src,
        map,
        () => b.emit(ldx("DW", R0, R0, 8)),
        () => b.emit(mov64(R0, imm(0))),
      ),
    comm: (b, at) =>
      withEntry(b, src, map, () => {
        b.emit(ldx("DW", R1, R0, 16), stx("DW", R10, at, R1));
        b.emit(ldx("DW", R1, R0, 24), stx("DW", R10, at + 8, R1));
      }, () => b.emit(st("DW", R10, at, 0), st("DW", R10, at + 8, 0))),
  };
}

/**
 * The header's pid, tid and comm of an I/O read at `src` of `level`: its submitter's where it
 * was seen, the current task's otherwise. Whatever reads them gets the submitters kept (see
 * {@link submitters}).
 */
export function submitterHeader(src: IoSource, level: IoSource["level"]): EventField[] {
  const map = submitterMap(level);
  const u32 = { type: "int", size: 4, signed: false } as const;
  const pidTgid = (half: "pid" | "tid") => (b: ProgramBuilder, dst: number) => {
    const store = () => {
      if (half === "pid") b.emit(alu64("RSH", R0, imm(32)));
      b.emit(stx("W", R7, dst, R0));
    };
    withEntry(b, src, map, () => {
      b.emit(ldx("DW", R0, R0, 8));
      store();
    }, () => {
      b.emit(call("get_current_pid_tgid"));
      store();
    });
  };
  return [
    field(["pid"], u32, pidTgid("pid")),
    field(["tid"], u32, pidTgid("tid")),
    field(["comm"], { type: "string", size: 16 }, (b, dst) =>
      withEntry(b, src, map, () => {
        b.emit(ldx("DW", R1, R0, 16), stx("DW", R7, dst, R1));
        b.emit(ldx("DW", R1, R0, 24), stx("DW", R7, dst + 8, R1));
      }, () => b.currentComm(R7, dst))),
  ];
}
