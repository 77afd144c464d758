/**
 * DTrace's `fileinfo_t` for Linux block I/O, as `event.file`, found in the kernel:
 *
 * - page-cache I/O: the bio's first page → its folio → the folio's mapping → the inode;
 * - direct I/O through iomap (ext4, xfs): the bio's `iomap_dio` → the kiocb → the file;
 * - then the inode's filesystem (`fi_fs`), its first dentry alias (`fi_name`), the dentries up
 *   to the filesystem's root (at most 16 levels), and the mount point of the superblock from
 *   a map the session fills from /proc/self/mountinfo (`fi_mount`), joined into `fi_dirname`
 *   and `fi_pathname`.
 *
 * `<none>` where no file exists (filesystem metadata, raw block devices: the "bdev"
 * filesystem); `<unknown>` where a file exists but cannot be named (no dentry, a mount the
 * session did not know); `fi_offset` -1 when unknown. Every field is a kernel string or
 * integer, usable in predicates and as aggregation keys. Pages are assumed 4 KiB.
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
  R7,
  type Reg,
  st,
  stx,
} from "../../../bpf/asm/mod.ts";
import type { BpfMap, MapSpec } from "../../../bpf/map.ts";
import { ksymAddress } from "../../../system/kallsyms.ts";
import { mountsByDev, refreshMounts } from "../../../system/mounts.ts";
import type { ProgramBuilder } from "../../codegen/builder.ts";
import { type EventField, writeText, zeroRecord } from "../../codegen/fields.ts";
import {
  memberOffset,
  readMember,
  readMemberBytes,
  structSize,
} from "../../codegen/struct_read.ts";
import { emitFolio } from "./page.ts";
import { type IoSource, loadBio } from "./source.ts";

/** DTrace's fileinfo_t. */
export interface FileInfo {
  /** Base name, "<none>" or "<unknown>". */
  fi_name: string;
  /** Directory of the file. */
  fi_dirname: string;
  /** Full path: mount point and the path within the filesystem. */
  fi_pathname: string;
  /** Byte offset in the file, -1 when unknown. */
  fi_offset: number;
  /** Filesystem type: "ext4", "xfs". */
  fi_fs: string;
  /** Mount point of the filesystem. */
  fi_mount: string;
}

const PAGE_SIZE = 4096;
const MAX_DEPTH = 16;
/** Visible bytes of a path; its area is twice that, so appends never leave it. */
const PATH_SIZE = 256;
const MOUNT_SIZE = 128;
const NAME_SIZE = 128;
const FS_SIZE = 16;

/** Layout of the one capture that fills every file field. */
const AT = {
  offset: 0,
  fs: 8,
  mount: 8 + FS_SIZE,
  name: 8 + FS_SIZE + MOUNT_SIZE,
  dirname: 8 + FS_SIZE + MOUNT_SIZE + NAME_SIZE,
  pathname: 8 + FS_SIZE + MOUNT_SIZE + NAME_SIZE + 2 * PATH_SIZE,
  size: 8 + FS_SIZE + MOUNT_SIZE + NAME_SIZE + 4 * PATH_SIZE,
} as const;

/** The map of mount points by superblock device that the session fills. */
export const MOUNTS_MAP: MapSpec = {
  name: "io_mounts",
  type: "hash",
  keySize: 4,
  valueSize: MOUNT_SIZE,
  maxEntries: 4096,
};

/** Fills the mount map from /proc/self/mountinfo. */
export function fillMounts(maps: ReadonlyMap<string, BpfMap>): void {
  const map = maps.get(MOUNTS_MAP.name);
  if (!map) return;
  const encoder = new TextEncoder();
  refreshMounts(); // mounts made since the last session count too
  for (const [dev, m] of mountsByDev()) {
    const value = new Uint8Array(MOUNT_SIZE);
    value.set(encoder.encode(m.mountPoint).subarray(0, MOUNT_SIZE - 1));
    map.update(new Uint8Array(new Uint32Array([dev]).buffer), value);
  }
}

/** Stack slots the capture keeps its pointers in. */
export interface Slots {
  inode: number;
  offset: number;
  dentry: number;
  mount: number;
  pos: number;
  dirlen: number;
  depth: number;
  names: number;
}

/** `slot = reg` and `reg = slot`. */
const save = (b: ProgramBuilder, slot: number, reg: Reg) => b.emit(stx("DW", R10, slot, reg));
const load = (b: ProgramBuilder, reg: Reg, slot: number) => b.emit(ldx("DW", reg, R10, slot));

/** Fills the `inode` and `offset` slots (0 and -1 when there is no file). */
export type InodeLocator = (b: ProgramBuilder, slots: Slots) => void;

/**
 * Finds the inode and file offset: from an iomap direct I/O, or from the page cache. Direct
 * I/O first: its pages are the caller's buffer, which may belong to another file's page cache
 * (a loop device's direct reads of its backing file fill the pages of a file on the loop
 * device) and must not name that file.
 */
export function emitInode(b: ProgramBuilder, src: IoSource, s: Slots): void {
  const pageCache = b.fresh("page_cache");
  const found = b.fresh("inode_found");
  b.emit(st("DW", R10, s.inode, 0), st("DW", R10, s.offset, -1));
  const dio = ksymAddress("iomap_dio_bio_end_io");
  if (dio !== undefined) {
    loadBio(b, src, R1);
    readMember(b, R1, "bio", "bi_end_io", R0);
    b.emit(ldImm64(R1, dio), jmp("JNE", R0, R1, pageCache));
    loadBio(b, src, R1);
    readMember(b, R1, "bio", "bi_private", R0);
    save(b, s.dentry, R0); // the iomap_dio, for a moment
    b.emit(mov64(R1, R0));
    readMember(b, R1, "iomap_dio", "iocb->ki_filp->f_inode", R0);
    save(b, s.inode, R0);
    load(b, R1, s.dentry);
    readMember(b, R1, "iomap_dio", "iocb->ki_pos", R0);
    save(b, s.offset, R0);
    b.emit(ja(found));
  }
  b.mark(pageCache);
  const folio = emitFolio(b, src);
  load(b, R1, folio.mapping);
  b.emit(jmp("JEQ", R1, imm(0), found), jmp("JSET", R1, imm(1), found));
  readMember(b, R1, "address_space", "host", R0);
  save(b, s.inode, R0);
  // Offset: the folio's index, the page's place in the folio, the bytes into the page.
  load(b, R1, folio.folio);
  readMember(b, R1, "folio", "index", R0);
  b.emit(alu64("MUL", R0, imm(PAGE_SIZE)));
  save(b, s.offset, R0);
  load(b, R0, folio.page);
  load(b, R1, folio.folio);
  b.emit(
    alu64("SUB", R0, R1),
    alu64("DIV", R0, imm(structSize("page"))),
    alu64("MUL", R0, imm(PAGE_SIZE)),
  );
  load(b, R1, s.offset);
  b.emit(alu64("ADD", R0, R1));
  save(b, s.offset, R0);
  loadBio(b, src, R1);
  readMember(b, R1, "bio", "bi_io_vec->bv_offset", R0);
  load(b, R1, s.offset);
  b.emit(alu64("ADD", R0, R1));
  save(b, s.offset, R0);
  b.mark(found);
}

/**
 * Collects the names of the dentries from the file up to its filesystem's root into the
 * `names` slots; leaves their count in the `depth` slot.
 */
function emitNames(b: ProgramBuilder, s: Slots): void {
  const top = b.fresh("root_reached");
  b.emit(st("DW", R10, s.depth, 0));
  load(b, R1, s.dentry);
  for (let i = 0; i < MAX_DEPTH; i++) {
    // R1 = the dentry at this level; its parent is itself at the filesystem root.
    save(b, s.mount, R1); // borrowed until the mount is looked up
    readMember(b, R1, "dentry", "d_parent", R0);
    load(b, R1, s.mount);
    b.emit(jmp("JEQ", R0, R1, top), jmp("JEQ", R0, imm(0), top));
    save(b, s.pos, R0); // the parent, for a moment
    readMember(b, R1, "dentry", "d_name.name", R0);
    save(b, s.names + 8 * i, R0);
    b.emit(st("DW", R10, s.depth, i + 1));
    load(b, R1, s.pos);
  }
  b.mark(top);
}

/** `pos = min(pos, PATH_SIZE - 1)` in R3, for the verifier and for long paths. */
function clampPos(b: ProgramBuilder): void {
  const ok = b.fresh("pos_ok");
  b.emit(jmp("JLE", R3, imm(PATH_SIZE - 1), ok), mov64(R3, imm(PATH_SIZE - 1))).mark(ok);
}

/**
 * Joins mount point and names into the path at `base + AT.pathname`, and the same without the
 * last name into `base + AT.dirname`.
 */
function emitJoin(b: ProgramBuilder, base: number, s: Slots): void {
  const path = base + AT.pathname;
  const mounted = b.fresh("mount_copied");
  // The mount point; "/" contributes nothing, every name brings its own "/".
  b.emit(mov64(R1, R7), alu64("ADD", R1, imm(path)), mov64(R2, imm(MOUNT_SIZE)));
  load(b, R3, s.mount);
  b.emit(call("probe_read_kernel_str"), mov64(R3, imm(0)), jmp("JSLE", R0, imm(2), mounted));
  b.emit(mov64(R3, R0), alu64("SUB", R3, imm(1))).mark(mounted);
  save(b, s.pos, R3);
  for (let i = MAX_DEPTH - 1; i >= 0; i--) {
    const skip = b.fresh("no_level");
    load(b, R0, s.depth);
    b.emit(jmp("JLE", R0, imm(i), skip));
    load(b, R3, s.pos);
    if (i === 0) save(b, s.dirlen, R3);
    clampPos(b);
    b.emit(
      mov64(R1, R7),
      alu64("ADD", R1, imm(path)),
      alu64("ADD", R1, R3),
      st("B", R1, 0, "/".charCodeAt(0)),
      alu64("ADD", R1, imm(1)),
      alu64("ADD", R3, imm(1)),
    );
    save(b, s.pos, R3);
    b.emit(mov64(R2, imm(PATH_SIZE)));
    load(b, R3, s.names + 8 * i);
    b.emit(call("probe_read_kernel_str"));
    load(b, R3, s.pos);
    const copied = b.fresh("name_copied");
    b.emit(jmp("JSLE", R0, imm(0), copied), alu64("ADD", R3, R0), alu64("SUB", R3, imm(1)));
    b.mark(copied);
    clampPos(b);
    save(b, s.pos, R3);
    b.mark(skip);
  }
  // The directory: the path up to the last "/", or "/" for a file at the root.
  const atRoot = b.fresh("dir_root");
  const dirDone = b.fresh("dir_done");
  load(b, R2, s.dirlen);
  b.emit(jmp("JEQ", R2, imm(0), atRoot), jmp("JLE", R2, imm(PATH_SIZE - 1), `${atRoot}_ok`));
  b.emit(mov64(R2, imm(PATH_SIZE - 1))).mark(`${atRoot}_ok`);
  save(b, s.dirlen, R2);
  b.emit(
    mov64(R1, R7),
    alu64("ADD", R1, imm(base + AT.dirname)),
    mov64(R3, R7),
    alu64("ADD", R3, imm(path)),
    call("probe_read_kernel"),
  );
  load(b, R2, s.dirlen);
  b.emit(
    jmp("JLE", R2, imm(PATH_SIZE - 1), `${dirDone}_ok`),
    mov64(R2, imm(PATH_SIZE - 1)),
  ).mark(`${dirDone}_ok`);
  b.emit(
    mov64(R1, R7),
    alu64("ADD", R1, imm(base + AT.dirname)),
    alu64("ADD", R1, R2),
    st("B", R1, 0, 0),
    ja(dirDone),
  ).mark(atRoot);
  writeText(b, base + AT.dirname, "/");
  b.mark(dirDone);
}

/** Stack slots for a file capture. */
export function fileSlots(b: ProgramBuilder): Slots {
  return {
    inode: b.alloc(8),
    offset: b.alloc(8),
    dentry: b.alloc(8),
    mount: b.alloc(8),
    pos: b.alloc(8),
    dirlen: b.alloc(8),
    depth: b.alloc(8),
    names: b.alloc(8 * MAX_DEPTH),
  };
}

function emitFile(b: ProgramBuilder, locate: InodeLocator, base: number, mounts: string): void {
  const done = b.fresh("file_done");
  const s = fileSlots(b);
  // Zeroed first: equal names must be equal bytes to the end, as aggregation keys.
  zeroRecord(b, base, AT.size);
  for (const at of [AT.fs, AT.mount, AT.name, AT.dirname, AT.pathname]) {
    writeText(b, base + at, "<none>");
  }
  b.emit(st("DW", R7, base + AT.offset, -1));
  locate(b, s);
  load(b, R1, s.inode);
  b.emit(jmp("JEQ", R1, imm(0), done));
  readMemberBytes(b, R1, "inode", "i_sb->s_type->name", R7, base + AT.fs, FS_SIZE);
  // The "bdev" filesystem holds block devices' own caches: metadata and raw device I/O.
  const isFile = b.fresh("is_file");
  b.emit(ldx("DW", R0, R7, base + AT.fs), ldImm64(R1, 0x7665_6462n)); // "bdev\0"
  b.emit(jmp("JNE", R0, R1, isFile));
  writeText(b, base + AT.fs, "<none>");
  b.emit(ja(done)).mark(isFile);
  load(b, R0, s.offset);
  b.emit(stx("DW", R7, base + AT.offset, R0));
  // What cannot be named is "<unknown>": written where the naming stops, into zeroed bytes.
  const nameless = b.fresh("nameless");
  const mountless = b.fresh("mountless");
  const unknown = (ats: number[]) => ats.forEach((at) => writeText(b, base + at, "<unknown>"));
  // The dentry: the inode's first alias (an hlist node inside the dentry).
  load(b, R1, s.inode);
  readMember(b, R1, "inode", "i_dentry.first", R0);
  b.emit(
    jmp("JEQ", R0, imm(0), nameless),
    alu64("SUB", R0, imm(memberOffset("dentry", "d_u.d_alias"))),
  );
  save(b, s.dentry, R0);
  b.emit(mov64(R1, R0));
  readMemberBytes(b, R1, "dentry", "d_name.name", R7, base + AT.name, NAME_SIZE);
  // The mount point, by the superblock's device.
  const key = b.alloc(8);
  const lookUpMount = () => {
    b.emit(st("DW", R10, key, 0));
    load(b, R1, s.inode);
    readMember(b, R1, "inode", "i_sb->s_dev", R0);
    b.emit(stx("W", R10, key, R0), ldMap(R1, mounts));
    b.stackPtr(R2, key).emit(call("map_lookup_elem"), jmp("JEQ", R0, imm(0), mountless));
    save(b, s.mount, R0);
  };
  lookUpMount();
  b.emit(mov64(R1, R7), alu64("ADD", R1, imm(base + AT.mount)), mov64(R2, imm(MOUNT_SIZE)));
  b.emit(mov64(R3, R0), call("probe_read_kernel_str"));
  emitNames(b, s);
  lookUpMount(); // emitNames borrowed the mount slot
  emitJoin(b, base, s);
  b.emit(ja(done)).mark(nameless);
  unknown([AT.name]);
  b.mark(mountless);
  unknown([AT.mount, AT.dirname, AT.pathname]);
  b.mark(done);
}

/** The `file` fields, of the inode `locate` finds; `mounts` names the mount map. */
export function fileFields(locate: InodeLocator, mounts: string): EventField[] {
  const whole = ["$file"];
  const string = (size: number) => ({ type: "string", size }) as const;
  const part = (
    name: keyof FileInfo,
    offset: number,
    decoding: EventField["decoding"],
  ): EventField => ({
    path: ["file", name],
    type: decoding.type === "string"
      ? { kind: "string", size: decoding.size }
      : { kind: "int", signed: true, bigint: false },
    decoding,
    size: 0,
    capture: () => {},
    partOf: { path: whole, offset },
  });
  return [
    {
      path: whole,
      decoding: { type: "bytes", size: AT.size },
      size: AT.size,
      capture: (b, dst) => emitFile(b, locate, dst, mounts),
    },
    part("fi_offset", AT.offset, { type: "int", size: 8, signed: true }),
    part("fi_fs", AT.fs, string(FS_SIZE)),
    part("fi_mount", AT.mount, string(MOUNT_SIZE)),
    part("fi_name", AT.name, string(NAME_SIZE)),
    part("fi_dirname", AT.dirname, string(PATH_SIZE)),
    part("fi_pathname", AT.pathname, string(PATH_SIZE)),
  ];
}
