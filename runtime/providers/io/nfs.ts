/**
 * io:start and io:done for NFS file I/O, as DTrace defines them: one event per READ or WRITE
 * request the client sends to the server (NFSv3 and v4: the `nfs` module's tracepoints serve
 * both), from the raw tracepoints `nfs_initiate_read`/`nfs_initiate_write` (start, argument:
 * the `struct nfs_pgio_header *`) and `nfs_readpage_done`/`nfs_writeback_done` (done,
 * arguments: the RPC task and the header). Metadata requests (LOOKUP, READDIR, GETATTR) are no
 * reads or writes and fire nothing; nor do COMMITs, which move no data: DTrace's NFS client
 * fires io probes only for its buf reads and writes.
 *
 * The same fields as for block devices, adapted:
 * - `buf`: `b_bcount` the bytes requested, `b_resid` those the server did not transfer (all on
 *   failure), `b_blkno` the file offset in 512-byte units, `b_error` the errno of the RPC
 *   status, `b_edev` the mount's (anonymous) device number; B_ASYNC for page-cache writes
 *   (writeback), B_PAGEIO for page-cache I/O, B_PHYS for direct I/O, B_ERROR on failure.
 * - `dev`: as DTrace shows NFS: `dev_name` "nfs", `dev_statname` "nfs" and the minor number
 *   ("nfs53"), `dev_pathname` the server and export ("127.0.0.1:/srv/export").
 * - `file`: the request's inode, named through its dentry as for block I/O; `fi_offset` the
 *   request's offset.
 *
 * A done's pid, tid and comm are those of the thread that started the request (completions run
 * in rpciod workers); so is the process filter's subject.
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
  R6,
  R7,
  R8,
  type Reg,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import { attachRawTracepoint } from "../../../bpf/link.ts";
import type { Program } from "../../../bpf/program.ts";
import { kernelDev } from "../../../system/block_devices.ts";
import { ksymName } from "../../../system/kallsyms.ts";
import { mountForDev } from "../../../system/mounts.ts";
import { pathExists } from "../../../system/files.ts";
import { tracefsRoot } from "../../../system/tracefs.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, field, headerFields, latencyFromState } from "../../codegen/fields.ts";
import {
  type FilterSubject,
  probeProgram,
  stateValueSize,
  type ThreadState,
} from "../../codegen/probe_program.ts";
import { readMember } from "../../codegen/struct_read.ts";
import type { ProbeSite, SiteContext } from "../provider.ts";
import { B, type BufInfo } from "./bufinfo.ts";
import { type DevInfo, pinnedDevices } from "./devinfo.ts";
import type { Expr } from "../../lambda/ir.ts";
import { fileFields, fillMounts, MOUNTS_MAP, type Slots } from "./fileinfo.ts";

/** The two kinds of NFS request that are I/O, and their tracepoints. */
const KINDS = {
  read: { start: "nfs_initiate_read", done: "nfs_readpage_done", flag: B.B_READ },
  write: { start: "nfs_initiate_write", done: "nfs_writeback_done", flag: B.B_WRITE },
} as const;
type Kind = keyof typeof KINDS;

const HEADER = "nfs_pgio_header";
/** Where the header pointer is in each tracepoint's arguments (u64 each). */
const HDR_AT = { start: 0, done: 8 } as const;
/** The RPC task, at done. */
const TASK_AT = 0;
const START_MAP = "io_nfs_start";
const NAME_SIZE = 32;

/** True where the kernel has the NFS client's read and write tracepoints (module loaded). */
export function haveNfsTracepoints(): boolean {
  const events = `${tracefsRoot()}/events/nfs`;
  return Object.values(KINDS).every((k) =>
    pathExists(`${events}/${k.start}`) && pathExists(`${events}/${k.done}`)
  );
}

/** `dst = hdr->path` on an NFS site. */
function hdrMember(b: ProgramBuilder, side: "start" | "done", path: string, dst: Reg): void {
  b.emit(ldx("DW", R1, R6, HDR_AT[side]));
  readMember(b, R1, HEADER, path, dst);
}

/** `R0 = the errno of a done's RPC status` (0 at start and on success). */
function loadErrno(b: ProgramBuilder, side: "start" | "done"): void {
  if (side === "start") return void b.emit(mov64(R0, imm(0)));
  const ok = b.fresh("rpc_ok");
  b.emit(ldx("DW", R1, R6, TASK_AT));
  readMember(b, R1, "rpc_task", "tk_status", R0);
  // tk_status is an int: a negative errno on failure, else 0 or the bytes moved.
  const done = b.fresh("rpc_errno");
  b.emit(alu64("LSH", R0, imm(32)), alu64("ARSH", R0, imm(32)));
  b.emit(jmp("JSGE", R0, imm(0), ok), alu64("NEG", R0, imm(0)), ja(done));
  b.mark(ok).emit(mov64(R0, imm(0))).mark(done);
}

/**
 * Writes "nfs" and the decimal minor number of the device in R0 at R7 + `dst`, NUL-ended:
 * DTrace's name of an NFS mount's device. Minor numbers have at most 7 digits (20 bits).
 */
function emitStatName(b: ProgramBuilder, dst: number): void {
  const minor = b.alloc(8);
  b.emit(alu64("AND", R0, imm(0xfffff)), stx("DW", R10, minor, R0));
  for (let p = 0; p < NAME_SIZE; p += 8) b.emit(st("DW", R7, dst + p, 0));
  b.emit(st("B", R7, dst, 0x6e), st("B", R7, dst + 1, 0x66), st("B", R7, dst + 2, 0x73));
  const done = b.fresh("statname_done");
  // Unrolled for each digit count, most first: the verifier sees no loop.
  for (let digits = 7; digits >= 1; digits--) {
    const fewer = b.fresh("fewer_digits");
    if (digits > 1) {
      b.emit(ldx("DW", R1, R10, minor), jmp("JLT", R1, imm(10 ** (digits - 1)), fewer));
    }
    for (let i = 0; i < digits; i++) {
      b.emit(
        ldx("DW", R1, R10, minor),
        alu64("DIV", R1, imm(10 ** (digits - 1 - i))),
        alu64("MOD", R1, imm(10)),
        alu64("ADD", R1, imm(0x30)),
        stx("B", R7, dst + 3 + i, R1),
      );
    }
    b.emit(ja(done)).mark(fewer);
  }
  b.mark(done);
}

/** The `buf` fields of an NFS site. */
function bufFields(kind: Kind, side: "start" | "done"): EventField[] {
  const int = (signed = false) => ({ type: "int", size: 8, signed }) as const;
  const member = (path: string, shift = 0) => (b: ProgramBuilder, dst: number) => {
    hdrMember(b, side, path, R0);
    if (shift) b.emit(alu64("RSH", R0, imm(shift)));
    b.emit(stx("DW", R7, dst, R0));
  };
  const flags = (b: ProgramBuilder, dst: number) => {
    const direct = b.fresh("direct");
    const typed = b.fresh("typed");
    b.emit(st("DW", R7, dst, KINDS[kind].flag));
    hdrMember(b, side, "dreq", R0);
    b.emit(jmp("JNE", R0, imm(0), direct));
    // Page-cache writes are written back: nobody waits for them as they go out.
    const cached = B.B_PAGEIO | (kind === "write" ? B.B_ASYNC : 0);
    b.emit(ldx("DW", R0, R7, dst), alu64("OR", R0, imm(cached)), ja(typed)).mark(direct);
    b.emit(ldx("DW", R0, R7, dst), alu64("OR", R0, imm(B.B_PHYS))).mark(typed);
    b.emit(stx("DW", R7, dst, R0));
    if (side === "done") {
      const ok = b.fresh("no_error");
      loadErrno(b, side);
      b.emit(jmp("JEQ", R0, imm(0), ok), ldx("DW", R0, R7, dst));
      b.emit(alu64("OR", R0, imm(B.B_ERROR)), stx("DW", R7, dst, R0)).mark(ok);
    }
  };
  const resid = (b: ProgramBuilder, dst: number) => {
    if (side === "start") return void b.emit(st("DW", R7, dst, 0));
    const ok = b.fresh("resid_ok");
    const done = b.fresh("resid_done");
    const count = b.alloc(8);
    hdrMember(b, side, "args.count", R0);
    b.emit(stx("DW", R10, count, R0));
    loadErrno(b, side);
    b.emit(jmp("JEQ", R0, imm(0), ok), ldx("DW", R0, R10, count), ja(done)).mark(ok);
    hdrMember(b, side, "res.count", R1);
    b.emit(ldx("DW", R0, R10, count), alu64("SUB", R0, R1)).mark(done);
    b.emit(stx("DW", R7, dst, R0));
  };
  const f = (name: keyof BufInfo, ...rest: [Parameters<typeof field>[1], EventField["capture"]]) =>
    field(["buf", name], ...rest, 8);
  return [
    f("b_flags", int(), flags),
    f("b_bcount", int(), member("args.count")),
    f("b_addr", { type: "pointer" }, member("args.pages")),
    f("b_blkno", int(), member("args.offset", 9)),
    f("b_lblkno", int(), member("args.offset", 9)),
    f("b_resid", int(true), resid),
    f("b_bufsize", int(), member("args.count")),
    {
      ...f("b_iodone", { type: "pointer" }, member("completion_ops->completion")),
      type: undefined,
      transform: (addr) => ksymName(addr as bigint) ?? `0x${(addr as bigint).toString(16)}`,
    },
    f("b_error", int(true), (b, dst) => {
      loadErrno(b, side);
      b.emit(stx("DW", R7, dst, R0));
    }),
    f("b_edev", int(), member("inode->i_sb->s_dev")),
  ];
}

/** The `dev` fields of an NFS site: the mount's anonymous device. */
function devFields(side: "start" | "done"): EventField[] {
  const dev = (shape: (b: ProgramBuilder) => void) => (b: ProgramBuilder, dst: number) => {
    hdrMember(b, side, "inode->i_sb->s_dev", R0);
    shape(b);
    b.emit(stx("DW", R7, dst, R0));
  };
  const int = { type: "int", size: 8, signed: false } as const;
  const minor = dev((b) => b.emit(alu64("AND", R0, imm(0xfffff))));
  const name = (field: keyof DevInfo) => ["dev", field];
  return [
    field(name("dev_major"), int, dev((b) => b.emit(alu64("RSH", R0, imm(20))))),
    field(name("dev_minor"), int, minor),
    field(name("dev_instance"), int, minor),
    { ...field(name("dev_name"), int, minor), type: undefined, transform: () => "nfs" },
    {
      ...field(name("dev_statname"), { type: "string", size: NAME_SIZE }, (b, dst) => {
        hdrMember(b, side, "inode->i_sb->s_dev", R0);
        emitStatName(b, dst);
      }),
      compareAs: (value: string) => {
        const m = /^nfs(\d{1,7})$/.exec(value);
        return m
          ? { path: ["buf", "b_edev"], value: BigInt(kernelDev(0, Number(m[1]))) }
          : undefined;
      },
    },
    {
      ...field(name("dev_pathname"), int, dev(() => {})),
      type: undefined,
      transform: (d) => mountForDev(Number(d))?.source ?? "<unknown>",
    },
  ];
}

/** The thread that started a request: its pid_tgid and comm, saved at start for the done. */
function starterFields(): EventField[] {
  const u32 = { type: "int", size: 4, signed: false } as const;
  const fromState =
    (emit: (b: ProgramBuilder, dst: number) => void, current: typeof emit) =>
    (b: ProgramBuilder, dst: number) => {
      const none = b.fresh("no_starter");
      const done = b.fresh("starter_done");
      b.emit(jmp("JEQ", R8, imm(0), none));
      emit(b, dst);
      b.emit(ja(done)).mark(none);
      current(b, dst);
      b.mark(done);
    };
  const half = (pid: boolean) => (b: ProgramBuilder, dst: number) => {
    if (pid) b.emit(alu64("RSH", R0, imm(32)));
    b.emit(stx("W", R7, dst, R0));
  };
  const idField = (name: "pid" | "tid") =>
    field(
      [name],
      u32,
      fromState(
        (b, dst) => {
          b.emit(ldx("DW", R0, R8, 8));
          half(name === "pid")(b, dst);
        },
        (b, dst) => {
          b.emit(call("get_current_pid_tgid"));
          half(name === "pid")(b, dst);
        },
      ),
    );
  return [
    idField("pid"),
    idField("tid"),
    field(
      ["comm"],
      { type: "string", size: 16 },
      fromState((b, dst) => {
        b.emit(ldx("DW", R1, R8, 16), stx("DW", R7, dst, R1));
        b.emit(ldx("DW", R1, R8, 24), stx("DW", R7, dst + 8, R1));
      }, (b, dst) => b.currentComm(R7, dst)),
    ),
  ];
}

/**
 * `R0 =` the saved start of a done's request (time, pid_tgid, comm), or 0: the process filter
 * runs before the hook's state is in R8.
 */
function emitStart(b: ProgramBuilder, map: string): void {
  const key = b.alloc(8);
  b.emit(ldx("DW", R0, R6, HDR_AT.done), stx("DW", R10, key, R0), ldMap(R1, map));
  b.stackPtr(R2, key).emit(call("map_lookup_elem"));
}

/** The process filter's subject at done: the thread that started the request. */
function starter(map: string): FilterSubject {
  return {
    pidTgid: (b) => {
      const none = b.fresh("no_starter");
      emitStart(b, map);
      b.emit(jmp("JEQ", R0, imm(0), none), ldx("DW", R0, R0, 8)).mark(none);
    },
    comm: (b, at) => {
      const none = b.fresh("no_starter");
      const done = b.fresh("starter_done");
      emitStart(b, map);
      b.emit(jmp("JEQ", R0, imm(0), none));
      b.emit(ldx("DW", R1, R0, 16), stx("DW", R10, at, R1));
      b.emit(ldx("DW", R1, R0, 24), stx("DW", R10, at + 8, R1), ja(done)).mark(none);
      b.emit(st("DW", R10, at, 0), st("DW", R10, at + 8, 0)).mark(done);
    },
  };
}

/**
 * The NFS sites of io:start or io:done, one per kind of request (read, write); none where the
 * kernel has no NFS client tracepoints (the nfs module not loaded).
 */
export function nfsSites(side: "start" | "done", ctx: SiteContext): ProbeSite[] {
  if (!haveNfsTracepoints()) return [];
  const name = `io:${side}`;
  const mounts = ctx.map(MOUNTS_MAP);
  const startMap = ctx.map({
    name: START_MAP,
    type: "hash",
    keySize: 8,
    valueSize: stateValueSize(3),
    maxEntries: 65536,
  });
  const key = (b: ProgramBuilder) => b.emit(ldx("DW", R0, R6, HDR_AT[side]));
  return (Object.keys(KINDS) as Kind[]).map((kind) => {
    const tracepoint = KINDS[kind][side];
    const locate = (b: ProgramBuilder, s: Slots) => {
      hdrMember(b, side, "inode", R0);
      b.emit(stx("DW", R10, s.inode, R0));
      hdrMember(b, side, "args.offset", R0);
      b.emit(stx("DW", R10, s.offset, R0));
    };
    const own = new Set(["pid", "tid", "comm"]);
    const header = side === "start"
      ? headerFields()
      : [...starterFields(), ...headerFields().filter((f) => !own.has(f.path[0]))];
    const fields = [
      ...header,
      ...bufFields(kind, side),
      ...devFields(side),
      ...fileFields(locate, mounts),
      ...side === "done" ? [field(["latencyNs"], { type: "latency" }, latencyFromState())] : [],
    ];
    const hook = {
      name: `io_${side}_nfs_${kind}`,
      type: "raw_tracepoint" as const,
      attach: (p: Program) => attachRawTracepoint(p, tracepoint),
    };
    const site = {
      name,
      fields,
      constants: [{ path: ["probe"], constant: name }],
      prepare: fillMounts,
      // A predicate pinning a block device (major number not 0) rules NFS out.
      excludes: (predicates: readonly Expr[]) =>
        pinnedDevices(predicates).some((d) => d >> 20 !== 0),
    };
    if (side === "start") return { ...site, hook, companions: [] };
    // The start of each request, keyed by its header, for the done's latency and starter.
    const save: ThreadState = {
      map: startMap,
      mode: "save",
      capacity: 3,
      words: 3,
      key: (b) => b.emit(ldx("DW", R0, R6, HDR_AT.start)),
      fill: (b, at) => {
        b.emit(call("get_current_pid_tgid"), stx("DW", R10, at, R0));
        b.currentComm(R10, at + 8);
      },
    };
    const load: ThreadState = { map: startMap, mode: "load", capacity: 3, key };
    return {
      ...site,
      hook: { ...hook, state: load, subject: starter(startMap) },
      companions: [{
        name: `io_nfs_${kind}_start`,
        type: "raw_tracepoint" as const,
        instructions: probeProgram({ filter: {}, state: save }),
        attach: (p: Program) => attachRawTracepoint(p, KINDS[kind].start),
      }],
    };
  });
}
