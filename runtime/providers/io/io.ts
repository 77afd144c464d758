/**
 * The io provider: DTrace's io:start, io:done, io:wait-start and io:wait-done on Linux, with
 * `buf` (bufinfo_t), `dev` (devinfo_t) and `file` (fileinfo_t) named as in DTrace.
 *
 * start and done are per I/O as the device sees it: per request on request-based devices,
 * per bio on bio-based ones (see `source.ts`). done carries `latencyNs` from its start, timed
 * in the kernel by the request's (or bio's) address. NFS has no tracepoints on kernels
 * without the nfs module loaded; the NFS part is then unavailable (the listing says so).
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
import { tracefsRoot } from "../../../system/tracefs.ts";
import { attachRawTracepoint } from "../../../bpf/link.ts";
import type { Program } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import {
  type EventField,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
} from "../../codegen/fields.ts";
import {
  type FilterSubject,
  probeProgram,
  stateValueSize,
  type ThreadState,
} from "../../codegen/probe_program.ts";
import type { ProbeRequest, ProbeSite, SiteContext } from "../provider.ts";
import { describeRequest, type Provider } from "../probe_info.ts";
import { devMajor, devMinor } from "../../../system/block_devices.ts";
import { pathExists } from "../../../system/files.ts";
import type { Expr } from "../../lambda/ir.ts";
import { bufFields, type BufInfo } from "./bufinfo.ts";
import { devFields, type DevInfo, pinnedDevices } from "./devinfo.ts";
import { haveNfsTracepoints, nfsSites } from "./nfs.ts";
import {
  emitInode,
  fileFields,
  type FileInfo,
  fillMounts,
  MOUNTS_MAP,
  type Slots,
} from "./fileinfo.ts";
import {
  emitLevelGuard,
  type IoSource,
  loadBio,
  loadRoot,
  loadWord,
  SAVED_WORDS,
  SOURCES,
} from "./source.ts";
import { waitSite } from "./wait.ts";
import type { Association } from "./waited.ts";

/** An io:start event. */
export interface IoStartEvent extends EventHeader {
  /** The probe. */
  probe: "io:start";
  /** The I/O, as DTrace's bufinfo_t. */
  buf: BufInfo;
  /** Its device, as DTrace's devinfo_t. */
  dev: DevInfo;
  /** Its file, as DTrace's fileinfo_t (`<none>` for I/O of no file, such as metadata). */
  file: FileInfo;
}

/** An io:done event: `latencyNs` since its start (undefined when the start was not seen). */
export interface IoDoneEvent extends Omit<IoStartEvent, "probe"> {
  /** The probe. */
  probe: "io:done";
  /** Time since its start; undefined when the start was not seen (before tracing). */
  latencyNs: number | undefined;
}

/**
 * An io:wait-start event: the current thread blocks waiting for I/O. `buf`, `dev` and `file`
 * are those of the I/O it waits for, as `association` says it is known: `"exact"` where the
 * I/O names this thread as its waiter (synchronous bios, direct I/O) and was in flight when the
 * wait began; `"inferred"` where it is the thread's last submitted I/O within the second
 * before (page-cache reads: usually right, never certain); `"none"` (`<none>` and zeros)
 * otherwise.
 */
export interface IoWaitStartEvent extends EventHeader {
  /** The probe. */
  probe: "io:wait-start";
  /** How `buf`, `dev` and `file` were associated with this wait. */
  association: Association;
  /** The I/O waited for (the fields known without the request). */
  buf: Pick<BufInfo, "b_flags" | "b_bcount" | "b_bufsize" | "b_blkno" | "b_lblkno" | "b_edev">;
  /** Its device. */
  dev: DevInfo;
  /** Its file. */
  file: FileInfo;
}

/** An io:wait-done event: the thread resumes after `waitNs` of waiting. */
export interface IoWaitDoneEvent extends Omit<IoWaitStartEvent, "probe"> {
  /** The probe. */
  probe: "io:wait-done";
  /** How long the thread waited. */
  waitNs: number;
}

/** The io probes and their events. */
export interface IoEvents {
  /** An I/O issued to the device. */
  start: IoStartEvent;
  /** An I/O completed. */
  done: IoDoneEvent;
  /** A thread starts waiting for I/O. */
  "wait-start": IoWaitStartEvent;
  /** A thread is done waiting. */
  "wait-done": IoWaitDoneEvent;
}

/** An io probe name. */
export type IoProbe = keyof IoEvents;

const START_MAP = "io_start";
const SUBMITTER_MAP = "io_submitter";

/** The fields of an io start or done site. */
function ioFields(src: IoSource, mounts: string): EventField[] {
  const inode = (b: ProgramBuilder, slots: Slots) => emitInode(b, src, slots);
  return [...headerFields(), ...bufFields(src), ...devFields(src), ...fileFields(inode, mounts)];
}

/** A companion program on a raw tracepoint of the I/O, saving state keyed by its address. */
function saver(
  name: string,
  src: IoSource,
  tracepoint: string,
  state: Omit<ThreadState, "mode" | "key">,
): ProbeSite["companions"][0] {
  const guard = (b: ProgramBuilder, skip: string) => emitLevelGuard(b, src, skip);
  return {
    name,
    type: "raw_tracepoint",
    instructions: probeProgram({
      filter: {},
      guard,
      state: { ...state, mode: "save", key: (b) => loadRoot(b, src, R0) },
    }),
    attach: (p: Program) => attachRawTracepoint(p, tracepoint),
  };
}

/**
 * The program keeping who submitted each I/O, keyed by its (first) bio: at a bio's queueing,
 * and at a request's creation (`block_io_start`, or `block_getrq` before Linux 6.5), both in
 * the submitter's context; a request's issue and completion often run in kernel workers.
 */
function submitterSaver(level: IoSource["level"], map: string): ProbeSite["companions"][0] {
  const [tracepoint, keyOf] = level === "bio"
    ? ["block_bio_queue", SOURCES.bioStart]
    : requestCreationTracepoint() === "block:block_io_start"
    ? ["block_io_start", SOURCES.rqStart]
    : ["block_getrq", SOURCES.bioStart];
  return {
    name: `io_${level}_submit`,
    type: "raw_tracepoint",
    instructions: probeProgram({
      filter: {},
      // A bio of a request-based device is its request's: saved at the request's creation.
      guard: level === "bio" ? (b, skip) => emitLevelGuard(b, SOURCES.bioStart, skip) : undefined,
      state: {
        map,
        mode: "save",
        capacity: 3,
        words: 3,
        key: (b) => loadBio(b, keyOf, R0),
        fill: (b, at) => {
          b.emit(call("get_current_pid_tgid"), stx("DW", R10, at, R0));
          b.currentComm(R10, at + 8);
        },
      },
    }),
    attach: (p: Program) => attachRawTracepoint(p, tracepoint.replace("block:", "")),
  };
}

/**
 * Looks up the submitter of the I/O `src` is about in `map` (value: time, pid_tgid, comm); runs
 * `found` with R0 at the value, or `missing`.
 */
function withSubmitter(
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

/** The filter subject of an I/O: the task that submitted it (pid 0 when not seen). */
function submitter(src: IoSource, map: string): FilterSubject {
  return {
    pidTgid: (b) =>
      withSubmitter(
        b,
        src,
        map,
        () => b.emit(ldx("DW", R0, R0, 8)),
        () => b.emit(mov64(R0, imm(0))),
      ),
    comm: (b, at) =>
      withSubmitter(b, src, map, () => {
        b.emit(ldx("DW", R1, R0, 16), stx("DW", R10, at, R1));
        b.emit(ldx("DW", R1, R0, 24), stx("DW", R10, at + 8, R1));
      }, () => b.emit(st("DW", R10, at, 0), st("DW", R10, at + 8, 0))),
  };
}

/**
 * The header's pid, tid and comm of an I/O: its submitter's where it was seen (request issues
 * and completions often run in kernel workers), the current task's otherwise.
 */
function submitterHeader(src: IoSource, map: string): Map<string, EventField> {
  const u32 = { type: "int", size: 4, signed: false } as const;
  const pidTgid = (half: "pid" | "tid") => (b: ProgramBuilder, dst: number) => {
    const store = () => {
      if (half === "pid") b.emit(alu64("RSH", R0, imm(32)));
      b.emit(stx("W", R7, dst, R0));
    };
    withSubmitter(b, src, map, () => {
      b.emit(ldx("DW", R0, R0, 8));
      store();
    }, () => {
      b.emit(call("get_current_pid_tgid"));
      store();
    });
  };
  return new Map([
    ["pid", field(["pid"], u32, pidTgid("pid"))],
    ["tid", field(["tid"], u32, pidTgid("tid"))],
    [
      "comm",
      field(["comm"], { type: "string", size: 16 }, (b, dst) =>
        withSubmitter(b, src, map, () => {
          b.emit(ldx("DW", R1, R0, 16), stx("DW", R7, dst, R1));
          b.emit(ldx("DW", R1, R0, 24), stx("DW", R7, dst + 8, R1));
        }, () => b.currentComm(R7, dst))),
    ],
  ]);
}

/** Whether the device with this kernel dev number queues requests (blk-mq); undefined if gone. */
function requestBased(dev: number): boolean | undefined {
  const sys = `/sys/dev/block/${devMajor(dev)}:${devMinor(dev)}`;
  if (!pathExists(sys)) return undefined;
  // A partition's queue is its disk's.
  return pathExists(`${sys}/mq`) || pathExists(`${sys}/../mq`);
}

/**
 * True when a predicate pins the device (`dev_statname === "loop0"` compiles to a b_edev
 * comparison) to one this site's level never sees, so its programs need not run at all.
 */
function pinnedElsewhere(predicates: readonly Expr[], src: IoSource): boolean {
  return pinnedDevices(predicates).some((dev) => {
    const rq = requestBased(dev);
    return rq !== undefined && rq !== (src.level === "rq");
  });
}

/** The sites of io:start or io:done: requests, bios, and NFS reads and writes. */
function transferSites(side: "start" | "done", ctx: SiteContext): ProbeSite[] {
  return [...blockSites(side, ctx), ...nfsSites(side, ctx)];
}

/** The block sites of io:start or io:done: requests and bios. */
function blockSites(side: "start" | "done", ctx: SiteContext): ProbeSite[] {
  const mounts = ctx.map(MOUNTS_MAP);
  const name = `io:${side}`;
  const pairs: Array<[IoSource, IoSource]> = [
    [SOURCES.rqStart, SOURCES.rqDone],
    [SOURCES.bioStart, SOURCES.bioDone],
  ];
  return pairs.map(([start, done]) => {
    const src = side === "start" ? start : done;
    const attach = (p: Program) => attachRawTracepoint(p, src.tracepoint);
    const guard = (b: ProgramBuilder, skip: string) => emitLevelGuard(b, src, skip);
    const hook = {
      name: `io_${side}_${src.level}`,
      type: "raw_tracepoint" as const,
      attach,
      guard,
    };
    const site = {
      name,
      constants: [{ path: ["probe"], constant: name }],
      companions: [],
      prepare: fillMounts,
      excludes: (predicates: readonly Expr[]) => pinnedElsewhere(predicates, src),
    };
    // Who submitted each I/O, kept where it is seen in the submitter's context (a hint, so an
    // LRU map: an evicted entry loses one I/O its submitter).
    const submitters = ctx.map({
      name: `${SUBMITTER_MAP}_${src.level}`,
      type: "lru_hash",
      keySize: 8,
      valueSize: stateValueSize(3),
      maxEntries: 65536,
    });
    const saveSubmitter = [submitterSaver(src.level, submitters)];
    // A bio's start is its queueing, in the submitter's context already.
    const header = side === "done" || src.level === "rq"
      ? submitterHeader(src, submitters)
      : new Map<string, EventField>();
    const withHeader = (fields: EventField[]) =>
      fields.map((f) => header.get(f.path.join(".")) ?? f);
    // Completions run in whatever context finishes the I/O: a process filter keeps the I/O
    // its processes submitted.
    const subject = submitter(src, submitters);
    if (side === "start") {
      const fields = withHeader(ioFields(src, mounts));
      if (src.level === "bio") return { ...site, fields, hook };
      return { ...site, fields, hook: { ...hook, subject }, companions: saveSubmitter };
    }
    // A request's byte count and sector are still there at its completion; a bio's are not.
    const words = src.level === "bio" ? SAVED_WORDS.length : 0;
    const startMap = ctx.map({
      name: `${START_MAP}_${src.level}`,
      type: "hash",
      keySize: 8,
      valueSize: stateValueSize(words),
      maxEntries: 65536,
    });
    const load: ThreadState = {
      map: startMap,
      mode: "load",
      capacity: words,
      key: (b) => loadRoot(b, src, R0),
    };
    const saveStart = saver(`io_${src.level}_start`, start, start.tracepoint, {
      map: startMap,
      capacity: words,
      words,
      fill: (b, at) => {
        SAVED_WORDS.slice(0, words).forEach((w, i) => {
          loadWord(b, start, w, R0);
          b.emit(stx("DW", R10, at + 8 * i, R0));
        });
      },
    });
    const fields = [
      ...withHeader(ioFields(src, mounts)),
      field(["latencyNs"], { type: "latency" }, latencyFromState()),
    ];
    return {
      ...site,
      fields,
      hook: { ...hook, state: load, subject },
      companions: [saveStart, ...saveSubmitter],
    };
  });
}

/**
 * The tracepoint of a request's creation on request-based disks, in its submitter's context:
 * `block:block_io_start` (Linux 6.5+), else `block:block_getrq`, which fires at the same place
 * with the same `dev`, `sector` and `comm`.
 */
export function requestCreationTracepoint(): "block:block_io_start" | "block:block_getrq" {
  return pathExists(`${tracefsRoot()}/events/block/block_io_start`)
    ? "block:block_io_start"
    : "block:block_getrq";
}

/** A request for io probe `probe`. */
export function ioRequest(probe: string): ProbeRequest {
  if (!IO_PROBES.includes(probe as IoProbe)) {
    throw new TypeError(`Unknown io probe '${probe}': use one of ${IO_PROBES.join(", ")}`);
  }
  const name = `io:${probe}`;
  return {
    name,
    key: name,
    sites: (ctx) =>
      probe === "wait-start" || probe === "wait-done"
        ? [waitSite(probe === "wait-start" ? "start" : "done", ctx)]
        : transferSites(probe as "start" | "done", ctx),
  };
}

const IO_PROBES: readonly IoProbe[] = ["start", "done", "wait-start", "wait-done"];

/** io:start and io:done (block devices; NFS noted), io:wait-start and io:wait-done. */
export const ioProvider: Provider = {
  name: "io",
  list: (match) => {
    // The nfs module's tracepoints exist once it is loaded (modprobe nfs, or a first mount).
    const nfs = haveNfsTracepoints() ? [] : [
      "NFS: unavailable (no nfs client tracepoints: load the nfs module or mount an NFS share " +
      "before tracing)",
    ];
    // DTrace's argument types, as `dtrace -lv` shows them, before their members.
    const structs = [
      { name: "buf", type: "bufinfo_t" },
      { name: "dev", type: "devinfo_t" },
      { name: "file", type: "fileinfo_t" },
    ];
    return IO_PROBES.filter((p) => match(`io:${p}`)).map((p) => {
      const described = describeRequest("io", ioRequest(p));
      const info = { ...described, args: [...structs, ...described.args] };
      return p === "start" || p === "done"
        ? { ...info, notes: [...info.notes ?? [], ...nfs] }
        : info;
    });
  },
};
