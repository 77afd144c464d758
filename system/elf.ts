/**
 * Function symbols of ELF files, resolved to the file offsets that uprobes are placed at.
 *
 * A uprobe names an inode and an offset into that file, not a virtual address. This module reads
 * an executable or shared library (ELF64, either byte order), collects the defined function
 * symbols of `.symtab` and `.dynsym`, and converts a symbol's virtual address to a file offset
 * through the `PT_LOAD` segment that contains it: `offset = vaddr - p_vaddr + p_offset`.
 *
 * Pure TypeScript over `Deno.readFileSync`; no FFI and no external tools, except `ldconfig -p`
 * to find a library by its short name.
 *
 * @module
 */
import { closeMatches } from "./suggest.ts";

/** The file is not a readable ELF64 object, or its headers are inconsistent. */
export class ElfError extends Error {
  readonly path: string;
  constructor(path: string, detail: string) {
    super(`Cannot read ELF file ${path}: ${detail}`);
    this.name = "ElfError";
    this.path = path;
  }
}

/** No defined function of that name in the file; the message offers close matches. */
export class SymbolNotFoundError extends Error {
  readonly path: string;
  readonly symbol: string;
  /** Up to three function names close to {@link symbol}, best first. */
  readonly suggestions: string[];
  constructor(path: string, symbol: string, suggestions: string[], detail = "") {
    const hint = suggestions.length ? `; did you mean ${suggestions.join(", ")}?` : "";
    super(`Function '${symbol}' not found in ${path}${detail}${hint}`);
    this.name = "SymbolNotFoundError";
    this.path = path;
    this.symbol = symbol;
    this.suggestions = suggestions;
  }
}

/** A library short name ("c", "libssl.so.3") that neither `ldconfig -p` nor the usual paths know. */
export class LibraryNotFoundError extends Error {
  readonly library: string;
  constructor(library: string, suggestions: string[]) {
    const hint = suggestions.length ? `; did you mean ${suggestions.join(", ")}?` : "";
    super(
      `Library '${library}' not found in the ldconfig cache or the usual library directories` +
        `${hint} (give its full path instead)`,
    );
    this.name = "LibraryNotFoundError";
    this.library = library;
  }
}

/** One defined function symbol. */
export interface ElfSymbol {
  /** Plain name, without any `@VERSION` suffix. */
  name: string;
  /** Virtual address (`st_value`). */
  address: bigint;
  size: bigint;
  /** Offset in the file, for a uprobe. */
  offset: bigint;
  /** `STB_GLOBAL`/`STB_WEAK` rather than `STB_LOCAL`. */
  global: boolean;
  /** From `.dynsym` (exported) rather than `.symtab`. */
  dynamic: boolean;
}

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_GNU_VERSYM = 0x6fff_ffff;
const PT_LOAD = 1;
const SHT_NOTE = 7;
const NT_STAPSDT = 3;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const STB_LOCAL = 0;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
const SHN_XINDEX = 0xffff;
const VERSYM_HIDDEN = 0x8000;

interface Segment {
  vaddr: bigint;
  offset: bigint;
  filesz: bigint;
}

/** A USDT probe of the file, from its `.note.stapsdt` note (SystemTap's format). */
export interface UsdtNote {
  provider: string;
  name: string;
  /** File offset of the probe's instruction, for a uprobe. */
  offset: bigint;
  /** File offset of its semaphore (a u16 counting attached tracers), 0n when it has none. */
  semaphore: bigint;
  /** Argument specs as the note spells them ("8@%rbx", "-4@112(%rsp)"), space-separated. */
  args: string;
}

interface SymbolTable {
  /** USDT probes, in note order. */
  usdt: UsdtNote[];
  /** Defined functions by plain name; the preferred definition first. */
  functions: Map<string, ElfSymbol[]>;
  /** Names of defined `STT_GNU_IFUNC` symbols, which are resolvers rather than functions. */
  indirect: Set<string>;
  hasSymbols: boolean;
}

const tables = new Map<string, { stamp: string; table: SymbolTable }>();

function stampOf(path: string): string {
  try {
    const s = Deno.statSync(path);
    if (!s.isFile) throw new ElfError(path, "not a regular file");
    return `${s.dev}:${s.ino}:${s.size}:${s.mtime?.getTime()}`;
  } catch (e) {
    if (e instanceof ElfError) throw e;
    throw new ElfError(path, (e as Error).message);
  }
}

/** Parses (or returns the cached parse of) the function symbols of `path`. */
function symbolTable(path: string): SymbolTable {
  const stamp = stampOf(path);
  const cached = tables.get(path);
  if (cached && cached.stamp === stamp) return cached.table;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new ElfError(path, (e as Error).message);
  }
  const table = parse(path, bytes);
  tables.set(path, { stamp, table });
  return table;
}

function parse(path: string, bytes: Uint8Array): SymbolTable {
  const fail = (detail: string): never => {
    throw new ElfError(path, detail);
  };
  if (
    bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  ) {
    fail("not an ELF file");
  }
  if (bytes[4] !== 2) fail("not a 64-bit ELF file (only ELF64 is supported)");
  if (bytes[5] !== 1 && bytes[5] !== 2) fail(`unknown byte order ${bytes[5]}`);
  const le = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = BigInt(bytes.length);

  /** A byte range of the file as numbers, after checking that it lies inside the file. */
  const range = (offset: bigint, length: bigint, what: string): [number, number] => {
    if (offset < 0n || length < 0n || offset + length > size) fail(`${what} lies outside the file`);
    return [Number(offset), Number(length)];
  };

  const phoff = view.getBigUint64(0x20, le);
  const shoff = view.getBigUint64(0x28, le);
  const phentsize = view.getUint16(0x36, le);
  let phnum = view.getUint16(0x38, le);
  const shentsize = view.getUint16(0x3a, le);
  let shnum = view.getUint16(0x3c, le);
  let shstrndx = view.getUint16(0x3e, le);

  // Extended numbering: counts that do not fit 16 bits live in section header 0.
  if (shoff !== 0n && (shnum === 0 || phnum === 0xffff)) {
    const [s0] = range(shoff, 64n, "section header 0");
    if (shnum === 0) shnum = Number(view.getBigUint64(s0 + 32, le));
    if (phnum === 0xffff) phnum = view.getUint32(s0 + 44, le);
    if (shstrndx === SHN_XINDEX) shstrndx = view.getUint32(s0 + 40, le);
  }

  const segments: Segment[] = [];
  if (phnum > 0) {
    if (phentsize < 56) fail(`program header entries of ${phentsize} bytes`);
    const [ph] = range(phoff, BigInt(phnum) * BigInt(phentsize), "the program header table");
    for (let i = 0; i < phnum; i++) {
      const p = ph + i * phentsize;
      if (view.getUint32(p, le) !== PT_LOAD) continue;
      segments.push({
        offset: view.getBigUint64(p + 8, le),
        vaddr: view.getBigUint64(p + 16, le),
        filesz: view.getBigUint64(p + 32, le),
      });
    }
  }

  interface Section {
    type: number;
    name: number;
    addr: bigint;
    offset: bigint;
    size: bigint;
    link: number;
    entsize: bigint;
  }
  const sections: Section[] = [];
  if (shoff !== 0n && shnum > 0) {
    if (shentsize < 64) fail(`section header entries of ${shentsize} bytes`);
    const [sh] = range(shoff, BigInt(shnum) * BigInt(shentsize), "the section header table");
    for (let i = 0; i < shnum; i++) {
      const s = sh + i * shentsize;
      sections.push({
        name: view.getUint32(s, le),
        type: view.getUint32(s + 4, le),
        addr: view.getBigUint64(s + 16, le),
        offset: view.getBigUint64(s + 24, le),
        size: view.getBigUint64(s + 32, le),
        link: view.getUint32(s + 40, le),
        entsize: view.getBigUint64(s + 56, le),
      });
    }
  }

  const toOffset = (vaddr: bigint): bigint | undefined => {
    for (const seg of segments) {
      if (vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.filesz) {
        return vaddr - seg.vaddr + seg.offset;
      }
    }
    return undefined;
  };

  const decoder = new TextDecoder();
  const functions = new Map<string, Array<{ sym: ElfSymbol; rank: number }>>();
  const indirect = new Set<string>();
  let hasSymbols = false;
  // .dynsym first: for a name defined in both, the exported definition is the one callers reach.
  const order = [SHT_DYNSYM, SHT_SYMTAB];
  for (const type of order) {
    for (const sec of sections) {
      if (sec.type !== type || sec.size === 0n) continue;
      const strtab = sections[sec.link];
      if (!strtab) fail(`symbol table links to missing string table ${sec.link}`);
      const [strStart, strLen] = range(strtab.offset, strtab.size, "a string table");
      const entsize = sec.entsize >= 24n ? Number(sec.entsize) : 24;
      const [symStart, symLen] = range(sec.offset, sec.size, "a symbol table");
      const count = Math.floor(symLen / entsize);
      // .gnu.version parallels .dynsym: one u16 per symbol, bit 15 = not the default version.
      let versym: [number, number] | undefined;
      if (type === SHT_DYNSYM) {
        const vs = sections.find((s) => s.type === SHT_GNU_VERSYM);
        if (vs && vs.size >= BigInt(count * 2)) versym = range(vs.offset, vs.size, ".gnu.version");
      }
      for (let i = 1; i < count; i++) {
        const e = symStart + i * entsize;
        const nameOff = view.getUint32(e, le);
        const info = view.getUint8(e + 4);
        const shndx = view.getUint16(e + 6, le);
        const value = view.getBigUint64(e + 8, le);
        const kind = info & 0xf;
        if (kind !== STT_FUNC && kind !== STT_GNU_IFUNC) continue;
        if (shndx === SHN_UNDEF || value === 0n) continue;
        if (shndx >= SHN_LORESERVE && shndx !== SHN_ABS && shndx !== SHN_XINDEX) continue;
        if (nameOff >= strLen) continue;
        const start = strStart + nameOff;
        let end = start;
        while (end < strStart + strLen && bytes[end] !== 0) end++;
        let name = decoder.decode(bytes.subarray(start, end));
        // .symtab of some builds spells versions into names: "memcpy@@GLIBC_2.14" is the
        // default version, "memcpy@GLIBC_2.2.5" an old one.
        let hidden = versym !== undefined &&
          (view.getUint16(versym[0] + i * 2, le) & VERSYM_HIDDEN) !== 0;
        const at = name.indexOf("@");
        if (at > 0) {
          hidden ||= name[at + 1] !== "@";
          name = name.slice(0, at);
        }
        if (!name) continue;
        hasSymbols = true;
        if (kind === STT_GNU_IFUNC) {
          if (!hidden) indirect.add(name);
          continue;
        }
        const offset = toOffset(value);
        if (offset === undefined) continue;
        const sym: ElfSymbol = {
          name,
          address: value,
          size: view.getBigUint64(e + 16, le),
          offset,
          global: (info >> 4) !== STB_LOCAL,
          dynamic: type === SHT_DYNSYM,
        };
        const rank = !sym.global ? 2 : hidden ? 1 : 0;
        const list = functions.get(name);
        if (!list) functions.set(name, [{ sym, rank }]);
        else if (!list.some((c) => c.sym.address === sym.address)) list.push({ sym, rank });
      }
    }
  }
  // Of several definitions: the default-version export, then other globals, then locals; ties
  // keep the order seen (.dynsym first). The sort is stable. A name whose default version is an
  // indirect function (glibc's memcpy@@GLIBC_2.14) is not a function to probe, even when an old
  // compatibility version (memcpy@GLIBC_2.2.5) is a plain one: callers never reach that.
  const sorted = new Map<string, ElfSymbol[]>();
  for (const [name, list] of functions) {
    list.sort((a, b) => a.rank - b.rank);
    if (list[0].rank === 0 || !indirect.has(name)) {
      sorted.set(name, list.map((c) => c.sym));
      indirect.delete(name);
    }
  }
  return { functions: sorted, indirect, hasSymbols, usdt: usdtNotes() };

  /** The section's name, from the section header string table. */
  function sectionName(sec: Section): string {
    const names = sections[shstrndx];
    if (!names) return "";
    const [start, length] = range(names.offset, names.size, "the section name table");
    let end = start + sec.name;
    if (sec.name >= length) return "";
    while (end < start + length && bytes[end] !== 0) end++;
    return decoder.decode(bytes.subarray(start + sec.name, end));
  }

  /**
   * The probes of `.note.stapsdt`: each note holds the probe's address, the link-time address
   * of `.stapsdt.base` (to correct for prelinking) and of its semaphore, then provider, name
   * and argument specs as NUL-terminated strings.
   */
  function usdtNotes(): UsdtNote[] {
    const base = sections.find((s) => sectionName(s) === ".stapsdt.base")?.addr;
    const out: UsdtNote[] = [];
    for (const sec of sections) {
      if (sec.type !== SHT_NOTE || sectionName(sec) !== ".note.stapsdt") continue;
      const [start, length] = range(sec.offset, sec.size, ".note.stapsdt");
      for (let p = start; p + 12 <= start + length;) {
        const nameSize = view.getUint32(p, le);
        const descSize = view.getUint32(p + 4, le);
        const type = view.getUint32(p + 8, le);
        const desc = p + 12 + align4(nameSize);
        const next = desc + align4(descSize);
        if (next > start + length) fail("a .note.stapsdt note overruns its section");
        if (type === NT_STAPSDT && descSize >= 24) {
          const pc = view.getBigUint64(desc, le);
          const linkBase = view.getBigUint64(desc + 8, le);
          const sem = view.getBigUint64(desc + 16, le);
          const strings = decoder.decode(bytes.subarray(desc + 24, desc + descSize)).split("\0");
          const shift = base !== undefined ? base - linkBase : 0n;
          const offset = toOffset(pc + shift);
          if (offset !== undefined) {
            out.push({
              provider: strings[0] ?? "",
              name: strings[1] ?? "",
              offset,
              // Semaphores live in .probes, initialized data: in the file.
              semaphore: sem === 0n ? 0n : toOffset(sem + shift) ?? 0n,
              args: strings[2] ?? "",
            });
          }
        }
        p = next;
      }
    }
    return out;
  }
}

const align4 = (n: number) => (n + 3) & ~3;

/** The USDT probes of the ELF file `path` (empty when it has none). */
export function usdtProbes(path: string): UsdtNote[] {
  return symbolTable(path).usdt;
}

/** Strips an `@VERSION` or `@@VERSION` suffix: `malloc@@GLIBC_2.2.5` is looked up as `malloc`. */
function plainName(symbol: string): string {
  const at = symbol.indexOf("@");
  return at > 0 ? symbol.slice(0, at) : symbol;
}

/**
 * The file offset of the function `symbol` in the ELF file `path`, for a uprobe. Looks in
 * `.dynsym` and `.symtab`; a version suffix (`malloc@@GLIBC_2.2.5`) is ignored, and of several
 * versions the default one is taken. Throws {@link SymbolNotFoundError} (with suggestions) when
 * there is no such defined function, and {@link ElfError} when the file cannot be parsed.
 */
export function resolveSymbol(path: string, symbol: string): bigint {
  const table = symbolTable(path);
  const name = plainName(symbol);
  const found = table.functions.get(name);
  if (found) return found[0].offset;
  let detail = "";
  if (table.indirect.has(name)) {
    detail = " (it is an indirect function, STT_GNU_IFUNC: probe the implementation it selects)";
  } else if (!table.hasSymbols) {
    detail = " (the file has no function symbols: is it stripped?)";
  }
  const suggestions = closeMatches(name, table.functions.keys(), 3);
  throw new SymbolNotFoundError(path, symbol, suggestions, detail);
}

/** Every defined function symbol of the ELF file `path`, sorted by name, without duplicates. */
export function listSymbols(path: string): string[] {
  return [...symbolTable(path).functions.keys()].sort();
}

/** The function symbols of `path` with their addresses, sizes and file offsets. */
export function functionSymbols(path: string): ElfSymbol[] {
  return [...symbolTable(path).functions.values()].map((list) => list[0]);
}

const LIBRARY_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
  "/usr/local/lib",
];

/** ELF `e_machine` of the running architecture, to skip other architectures' libraries. */
const HOST_MACHINE: Record<string, number> = { x86_64: 62, aarch64: 183 };

let ldconfigCache: Array<{ name: string; path: string }> | undefined;

/** The `ldconfig -p` cache listing as (soname, path) pairs; empty when ldconfig is missing. */
function ldconfigEntries(): Array<{ name: string; path: string }> {
  if (ldconfigCache) return ldconfigCache;
  for (const bin of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    try {
      const out = new Deno.Command(bin, { args: ["-p"], stdout: "piped", stderr: "null" })
        .outputSync();
      if (!out.success) continue;
      const text = new TextDecoder().decode(out.stdout);
      ldconfigCache = [];
      for (const m of text.matchAll(/^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/gm)) {
        ldconfigCache.push({ name: m[1], path: m[3] });
      }
      return ldconfigCache;
    } catch {
      // Not at this path: try the next.
    }
  }
  ldconfigCache = [];
  return ldconfigCache;
}

/** True when `path` is an ELF file for this machine's architecture (not a linker script). */
function isHostElf(path: string): boolean {
  try {
    using file = Deno.openSync(path);
    const head = new Uint8Array(20);
    if (file.readSync(head) !== 20) return false;
    if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return false;
    const machine = new DataView(head.buffer).getUint16(18, head[5] === 1);
    const want = HOST_MACHINE[Deno.build.arch];
    return want === undefined || machine === want;
  } catch {
    return false;
  }
}

/**
 * Ranks a soname for the short name `base` ("libc"): exact "libc.so.N" forms first (higher
 * versions first), then "libc.so"; undefined when the soname is another library.
 */
function sonameRank(soname: string, base: string): number[] | undefined {
  if (soname === base) return [0];
  const prefix = `${base}.so`;
  if (soname === prefix) return [1];
  if (!soname.startsWith(`${prefix}.`)) return undefined;
  const version = soname.slice(prefix.length + 1).split(".").map(Number);
  if (version.some((n) => !Number.isInteger(n))) return undefined;
  return [2, ...version];
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return -d;
  }
  return 0;
}

/**
 * The path of a shared library given as a short name ("c", "libc", "libc.so.6", "ssl") or a
 * path. Looks in the `ldconfig -p` cache, then the usual library directories, and returns the
 * highest-versioned file that is an ELF object for this architecture (so "c" finds
 * `libc.so.6`, not the `libc.so` linker script). Throws {@link LibraryNotFoundError}.
 */
export function resolveLibrary(name: string): string {
  if (name.includes("/")) {
    if (isHostElf(name)) return name;
    throw new LibraryNotFoundError(name, []);
  }
  // "libc.so.6" is a soname to match exactly; "c" and "libc" stand for any libc.so*.
  const exact = /\.so(\.|$)/.test(name);
  const base = exact ? name : name.startsWith("lib") ? name : `lib${name}`;
  const candidates: Array<{ soname: string; path: string; rank: number[] }> = [];
  const consider = (soname: string, path: string) => {
    const rank = exact ? (soname === name ? [0] : undefined) : sonameRank(soname, base);
    if (rank) candidates.push({ soname, path, rank });
  };
  for (const e of ldconfigEntries()) consider(e.name, e.path);
  const best = (): string | undefined => {
    candidates.sort((a, b) => compareRank(a.rank, b.rank));
    return candidates.find((c) => isHostElf(c.path))?.path;
  };
  let found = best();
  if (found) return found;
  candidates.length = 0;
  for (const dir of LIBRARY_DIRS) {
    try {
      for (const entry of Deno.readDirSync(dir)) {
        if (entry.isFile || entry.isSymlink) consider(entry.name, `${dir}/${entry.name}`);
      }
    } catch {
      // Directory absent on this distribution.
    }
  }
  found = best();
  if (found) return found;
  // Suggest sonames whose base ("libcap" of "libcap.so.2") is close to the base asked for.
  const byBase = new Map<string, string>();
  for (const e of ldconfigEntries()) {
    const b = e.name.replace(/\.so(\..*)?$/, "");
    const prev = byBase.get(b);
    if (!prev || compareRank(sonameRank(e.name, b) ?? [], sonameRank(prev, b) ?? []) < 0) {
      byBase.set(b, e.name);
    }
  }
  const wanted = exact ? name.replace(/\.so(\..*)?$/, "") : base;
  const suggestions = closeMatches(wanted, byBase.keys(), 3).map((b) => byBase.get(b)!);
  throw new LibraryNotFoundError(name, suggestions);
}
