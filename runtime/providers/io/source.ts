/**
 * Where an io probe finds its I/O: a `struct request` on request-based devices (loop, virtio,
 * nvme: raw tracepoints block_rq_issue and block_rq_complete) or a `struct bio` on bio-based
 * ones (zram, device-mapper: block_bio_queue and block_bio_complete). Either way the device
 * sees one I/O per event, which is what /proc/diskstats counts.
 *
 * Raw tracepoint contexts are arrays of u64 arguments; R6 holds the context. In a `tp_btf`
 * program (a `typed` source) the arguments are BTF-typed pointers whose members load directly;
 * elsewhere each member is read with bpf_probe_read_kernel.
 *
 * @module
 */
import { imm, ja, jmp, ldx, R0, R1, R6, R8, type Reg } from "../../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { loadMember, readMember } from "../../codegen/struct_read.ts";

/** The values every I/O has, named for what they are. */
export type IoWord = "bytes" | "sector" | "dev" | "opf";

/** How one io site reaches its I/O. */
export interface IoSource {
  /** "rq" (request-based devices) or "bio" (bio-based devices). */
  level: "rq" | "bio";
  /** At the I/O's completion (done) rather than its issue (start). */
  done: boolean;
  /** Context offset of the `struct request *` or `struct bio *`. */
  rootOffset: number;
  /** The raw tracepoint. */
  tracepoint: string;
  /** Read in a `tp_btf` program: the root is a BTF-typed pointer, members load directly. */
  typed?: boolean;
}

/** The four sources: issue and completion of requests and of bios. */
export const SOURCES = {
  rqStart: { level: "rq", done: false, rootOffset: 0, tracepoint: "block_rq_issue" },
  rqDone: { level: "rq", done: true, rootOffset: 0, tracepoint: "block_rq_complete" },
  bioStart: { level: "bio", done: false, rootOffset: 0, tracepoint: "block_bio_queue" },
  bioDone: { level: "bio", done: true, rootOffset: 8, tracepoint: "block_bio_complete" },
} as const satisfies Record<string, IoSource>;

const PATHS: Record<IoSource["level"], Record<IoWord | "name" | "bio", string>> = {
  rq: {
    bytes: "__data_len",
    sector: "__sector",
    dev: "part->bd_dev",
    opf: "cmd_flags",
    name: "part->bd_device.kobj.name",
    bio: "bio",
  },
  bio: {
    bytes: "bi_iter.bi_size",
    sector: "bi_iter.bi_sector",
    dev: "bi_bdev->bd_dev",
    opf: "bi_opf",
    name: "bi_bdev->bd_device.kobj.name",
    bio: "",
  },
};

/**
 * A request without a partition (a flush the block layer made, a passthrough command) belongs
 * to its disk: where `part` is NULL, the device and its name come from the queue's disk.
 */
const DISK_OF_REQUEST: Record<"dev" | "name", string> = {
  dev: "q->disk->part0->bd_dev",
  name: "q->disk->part0->bd_device.kobj.name",
};

/**
 * `dst = reg->path` for a `struct type *` in `reg` (the root, or a pointer read from it): a
 * plain load where the source is typed, bpf_probe_read_kernel otherwise (clobbering R0-R5).
 */
export function readAt(
  b: ProgramBuilder,
  src: IoSource,
  reg: Reg,
  type: string,
  path: string,
  dst: Reg,
): void {
  if (src.typed) loadMember(b, reg, type, path, dst);
  else readMember(b, reg, type, path, dst);
}

/**
 * Emits `read(path)` with the member path of the I/O's device number or name, from the root
 * in R1; for a request, a branch on its partition picks the partition's or the disk's path.
 * `read` may clobber R0-R5; R1 is the root again for the second branch.
 */
export function readDevice(
  b: ProgramBuilder,
  src: IoSource,
  what: "dev" | "name",
  read: (type: string, path: string) => void,
): void {
  loadRoot(b, src, R1);
  if (src.level === "bio") return read("bio", PATHS.bio[what]);
  const disk = b.fresh("whole_disk");
  const done = b.fresh("device_read");
  readAt(b, src, R1, "request", "part", R0);
  b.emit(jmp("JEQ", R0, imm(0), disk));
  loadRoot(b, src, R1);
  read("request", PATHS.rq[what]);
  b.emit(ja(done)).mark(disk);
  loadRoot(b, src, R1);
  read("request", DISK_OF_REQUEST[what]);
  b.mark(done);
}

/** Words saved at a bio's start, for its completion: the iterator has moved on by then. */
export const SAVED_WORDS: readonly IoWord[] = ["bytes", "sector"];

/** `reg = the request or bio pointer`. */
export function loadRoot(b: ProgramBuilder, src: IoSource, reg: Reg): void {
  b.emit(ldx("DW", reg, R6, src.rootOffset));
}

/** The struct the root points at. */
export function rootType(src: IoSource): string {
  return src.level === "rq" ? "request" : "bio";
}

/** The member path of a value, from the root. */
function rootPath(src: IoSource, what: IoWord | "name"): string {
  return PATHS[src.level][what];
}

/** `dst = the I/O's bio` (a request's first bio). Clobbers R0-R5. */
export function loadBio(b: ProgramBuilder, src: IoSource, dst: Reg): void {
  if (src.level === "bio") return loadRoot(b, src, dst);
  loadRoot(b, src, R1);
  readAt(b, src, R1, "request", PATHS.rq.bio, dst);
}

/**
 * `dst = word`. At a bio's completion the byte count and sector come from the state its start
 * saved (R8), falling back to the bio when there was none.
 */
export function loadWord(b: ProgramBuilder, src: IoSource, what: IoWord, dst: Reg): void {
  const saved = SAVED_WORDS.indexOf(what);
  if (src.level === "bio" && src.done && saved >= 0) {
    const none = b.fresh("not_saved");
    const done = b.fresh("word_done");
    b.emit(
      jmp("JEQ", R8, imm(0), none),
      ldx("DW", dst, R8, 8 + 8 * saved),
      ja(done),
    ).mark(none);
    loadRoot(b, src, R1);
    readAt(b, src, R1, "bio", PATHS.bio[what], dst);
    b.mark(done);
    return;
  }
  if (what === "dev") return readDevice(b, src, "dev", (t, p) => readAt(b, src, R1, t, p, dst));
  loadRoot(b, src, R1);
  readAt(b, src, R1, rootType(src), rootPath(src, what), dst);
}

/**
 * Skips I/O of the other level: a bio on a request-based device is counted as its request.
 * Request tracepoints only fire for request-based devices.
 */
export function emitLevelGuard(b: ProgramBuilder, src: IoSource, skip: string): void {
  if (src.level !== "bio") return;
  loadRoot(b, src, R1);
  readAt(b, src, R1, "bio", "bi_bdev->bd_queue->mq_ops", R0);
  b.emit(jmp("JNE", R0, imm(0), skip));
}
