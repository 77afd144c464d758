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
import { R0, R10, stx } from "../../../bpf/asm/mod.ts";
import { btfTracepointId, haveBtfTracepoints } from "../../../bpf/features.ts";
import { tracefsRoot } from "../../../system/tracefs.ts";
import { attachBtfTracepoint, attachRawTracepoint } from "../../../bpf/link.ts";
import { AttachType } from "../../../bpf/program.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import {
  type EventField,
  type EventHeader,
  field,
  headerFields,
  latencyFromState,
} from "../../codegen/fields.ts";
import { probeProgram, stateValueSize, type ThreadState } from "../../codegen/probe_program.ts";
import type { HookPlan, ProbeRequest, ProbeSite, ProgramPlan, SiteContext } from "../provider.ts";
import { describeRequest, type Provider } from "../probe_info.ts";
import { bioBasedDisks, devMajor, devMinor } from "../../../system/block_devices.ts";
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
  loadRoot,
  loadWord,
  SAVED_WORDS,
  SOURCES,
} from "./source.ts";
import { emitLatency, emitSaveStart, START_MAPS, startMaps } from "./start_slots.ts";
import { submitterHeader, type Submitters, submitters } from "./submitter.ts";
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

/** The fields of an io start or done site. */
function ioFields(src: IoSource, mounts: string): EventField[] {
  const inode = (b: ProgramBuilder, slots: Slots) => emitInode(b, src, slots);
  return [...headerFields(), ...bufFields(src), ...devFields(src), ...fileFields(inode, mounts)];
}

/** An I/O source as its program reads it, and how that program attaches. */
interface Hooked {
  src: IoSource;
  attach: Pick<ProgramPlan, "type" | "attach" | "expectedAttachType" | "attachBtfId">;
}

/**
 * `src` read at `tracepoint` (its own by default): a `tp_btf` program where the kernel loads
 * them, whose typed arguments' members load directly, else a raw tracepoint program.
 */
function hooked(src: IoSource, tracepoint = src.tracepoint): Hooked {
  const id = haveBtfTracepoints() ? btfTracepointId(tracepoint) : undefined;
  if (id === undefined) {
    return {
      src,
      attach: { type: "raw_tracepoint", attach: (p) => attachRawTracepoint(p, tracepoint) },
    };
  }
  return {
    src: { ...src, typed: true },
    attach: {
      type: "tracing",
      expectedAttachType: AttachType.trace_raw_tp,
      attachBtfId: id,
      attach: (p) => attachBtfTracepoint(p, tracepoint),
    },
  };
}

/**
 * The request's creation, where its submitter is seen in its own context: `block_io_start`
 * (Linux 6.5+, with the request), or `block_getrq` (with its bio) before.
 */
function requestCreation(): Hooked {
  return requestCreationTracepoint() === "block:block_io_start"
    ? hooked(SOURCES.rqStart, "block_io_start")
    : hooked(SOURCES.bioStart, "block_getrq");
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

/** Counts bio-based disks added while no bio-level program runs: their I/O is not traced. */
const UNTRACED_DISKS = "io.untraced_disks";
const untracedTicks = new WeakMap<SiteContext, NonNullable<ProbeSite["tick"]>>();

/**
 * The upkeep of a session that loaded no bio-level programs (no bio-based disk at load): counts
 * the bio-based disks that appeared since, whose I/O goes untraced. One per session.
 */
function untracedDisks(ctx: SiteContext): NonNullable<ProbeSite["tick"]> {
  let tick = untracedTicks.get(ctx);
  if (!tick) {
    ctx.counter(
      UNTRACED_DISKS,
      "bio-based disks (zram, device-mapper) added after tracing began: their I/O is not traced",
    );
    const seen = new Set<string>();
    tick = () => {
      const added = bioBasedDisks().filter((d) => !seen.has(d));
      added.forEach((d) => seen.add(d));
      return { [UNTRACED_DISKS]: added.length };
    };
    untracedTicks.set(ctx, tick);
  }
  return tick;
}

/**
 * The block sites of io:start or io:done: requests, and bios where a bio-based disk exists.
 * Which disks take bios is known at load (/sys/block): without one, no program runs on every
 * bio of the request-based disks only to learn it should stop.
 */
function blockSites(side: "start" | "done", ctx: SiteContext): ProbeSite[] {
  const mounts = ctx.map(MOUNTS_MAP);
  if (!bioBasedDisks().length) {
    return [{ ...levelSite(side, ctx, mounts, "rq"), tick: untracedDisks(ctx) }];
  }
  return [levelSite(side, ctx, mounts, "rq"), levelSite(side, ctx, mounts, "bio")];
}

/** The io:start or io:done site of requests or of bios, fitted to what its consumers read. */
function levelSite(
  side: "start" | "done",
  ctx: SiteContext,
  mounts: string,
  level: IoSource["level"],
): ProbeSite {
  const [start, done] = level === "rq"
    ? [hooked(SOURCES.rqStart), hooked(SOURCES.rqDone)]
    : [hooked(SOURCES.bioStart), hooked(SOURCES.bioDone)];
  const { src, attach } = side === "start" ? start : done;
  const name = `io:${side}`;
  const hook: HookPlan = {
    name: `io_${side}_${level}`,
    ...attach,
    guard: (b, skip) => emitLevelGuard(b, src, skip),
  };
  // A bio's start is its queueing, in the submitter's context already.
  const header = side === "start" && level === "bio"
    ? new Map<string, EventField>()
    : new Map(submitterHeader(src, level).map((f) => [f.path.join("."), f]));
  // A request's issue time is kept in slots; a bio's start with its byte count and sector.
  const latency = field(
    ["latencyNs"],
    { type: "latency" },
    level === "rq" ? (b, dst) => emitLatency(b, START_MAPS, dst) : latencyFromState(),
  );
  const fields = [
    ...ioFields(src, mounts).map((f) => header.get(f.path.join(".")) ?? f),
    ...(side === "done" ? [latency] : []),
  ];
  return {
    name,
    fields,
    constants: [{ path: ["probe"], constant: name }],
    hook,
    companions: [],
    prepare: fillMounts,
    excludes: (predicates: readonly Expr[]) => pinnedElsewhere(predicates, src),
    fit(read) {
      const known: Submitters = header.size ? submitters(ctx, level, src, read, side) : {};
      const fitted = { hook: { ...hook, subject: known.subject } };
      // A request's issue is kept for its latency only.
      if (side === "start" || (level === "rq" && !read.has("latencyNs"))) {
        return { ...fitted, companions: starts(start, known.save) };
      }
      if (level === "rq") {
        const maps = startMaps(ctx);
        return { ...fitted, companions: starts(start, known.save, (b) => emitSaveStart(b, maps)) };
      }
      // A bio's start is kept for its byte count and sector too, which its iterator has moved
      // past at completion.
      const words = SAVED_WORDS.length;
      const map = ctx.map({
        name: `${START_MAP}_bio`,
        type: "hash",
        keySize: 8,
        valueSize: stateValueSize(words),
        maxEntries: 65536,
      });
      const key = (b: ProgramBuilder) => loadRoot(b, src, R0);
      return {
        hook: { ...fitted.hook, state: { map, mode: "load", capacity: words, key } },
        companions: starts(start, known.save, undefined, {
          map,
          mode: "save",
          capacity: words,
          words,
          key: (b) => loadRoot(b, start.src, R0),
          fill: (b, at) => {
            SAVED_WORDS.forEach((w, i) => {
              loadWord(b, start.src, w, R0);
              b.emit(stx("DW", R10, at + 8 * i, R0));
            });
          },
        }),
      };
    },
  };
}

/**
 * The programs where I/O of `start`'s level begins: keeping its start (a request's issue time
 * by `keep`, a bio's by the `state` saved), and what `save` keeps of its submitter. A bio's
 * are one program, at its queueing; a request's submitter is seen at its creation.
 */
function starts(
  start: Hooked,
  save: Submitters["save"],
  keep?: (b: ProgramBuilder) => void,
  state?: ThreadState,
): ProgramPlan[] {
  // Only a program keeping a start reads the time; only one on bios has I/O to skip (that of
  // request-based disks, which their requests account for).
  const program = (
    name: string,
    at: Hooked,
    body: ((b: ProgramBuilder) => void) | undefined,
    timed: boolean,
    state?: ThreadState,
  ) => ({
    name,
    ...at.attach,
    instructions: probeProgram({
      filter: {},
      guard: start.src.level === "bio" ? (b, skip) => emitLevelGuard(b, at.src, skip) : undefined,
      state,
      time: timed ? undefined : false,
      body,
    }),
  });
  if (start.src.level === "bio") {
    const saving = save && ((b: ProgramBuilder) => save(b, start.src));
    return state || save ? [program("io_bio_start", start, saving, !!state, state)] : [];
  }
  const creation = requestCreation();
  return [
    ...(keep ? [program("io_rq_start", start, keep, true)] : []),
    ...(save ? [program("io_rq_submit", creation, (b) => save(b, creation.src), false)] : []),
  ];
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
