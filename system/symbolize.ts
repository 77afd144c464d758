/**
 * Names code addresses as stack frames: kernel addresses through /proc/kallsyms, user
 * addresses through the process's mappings (/proc/PID/maps) and each mapped file's ELF symbol
 * tables, PIE executables and shared libraries alike. A process's mappings are read once and
 * kept, so the frames of a process that has exited since stay nameable; a file's symbols are
 * read once per file. A frame no symbol covers is `[unknown] 0x...` with the object's name.
 *
 * @module
 */
import { functionSymbols } from "./elf.ts";
import { ksym } from "./kallsyms.ts";
import { readTextOrUndefined } from "./files.ts";

/** One executable mapping of a process. */
interface Mapping {
  start: bigint;
  end: bigint;
  /** File offset of `start`. */
  offset: bigint;
  path: string;
}

/** A file's functions sorted by file offset, for lookups by offset. */
interface Symbols {
  offsets: bigint[];
  ends: bigint[];
  names: string[];
}

const mappings = new Map<number, Mapping[]>();
const symbols = new Map<string, Symbols | null>();

/** Most processes whose mappings are kept; the oldest go first. */
const KEPT_PROCESSES = 4096;

/** The executable file mappings of process `pid`, read once (undefined: gone before that). */
function mappingsOf(pid: number): Mapping[] | undefined {
  const known = mappings.get(pid);
  if (known) return known;
  const text = readTextOrUndefined(`/proc/${pid}/maps`);
  if (text === undefined) return undefined;
  const list: Mapping[] = [];
  for (const line of text.split("\n")) {
    // start-end perms offset dev inode path
    const m = /^([0-9a-f]+)-([0-9a-f]+) ..x. ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (m) {
      list.push({
        start: BigInt(`0x${m[1]}`),
        end: BigInt(`0x${m[2]}`),
        offset: BigInt(`0x${m[3]}`),
        path: m[4].replace(/ \(deleted\)$/, ""),
      });
    }
  }
  if (mappings.size >= KEPT_PROCESSES) mappings.delete(mappings.keys().next().value!);
  mappings.set(pid, list);
  return list;
}

/** Reads process `pid`'s mappings now, while it lives, for its frames to be named later. */
export function rememberProcess(pid: number): void {
  mappingsOf(pid);
}

function symbolsOf(path: string): Symbols | null {
  let s = symbols.get(path);
  if (s !== undefined) return s;
  try {
    const list = functionSymbols(path).filter((f) => f.size > 0n)
      .sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    s = {
      offsets: list.map((f) => f.offset),
      ends: list.map((f) => f.offset + f.size),
      names: list.map((f) => f.name),
    };
  } catch {
    s = null; // unreadable, or not ELF
  }
  symbols.set(path, s);
  return s;
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

/** A kernel frame: "function+0xoffset", or "[unknown] 0x..." */
export function kernelFrame(addr: bigint): string {
  const s = ksym(addr);
  if (!s) return `[unknown] ${hex(addr)}`;
  const off = addr - s.address;
  return off === 0n ? s.name : `${s.name}+${off}`;
}

/** A user frame of process `pid`: "function+offset", or "[unknown] 0x... (object)". */
export function userFrame(pid: number, addr: bigint): string {
  const map = mappingsOf(pid)?.find((m) => addr >= m.start && addr < m.end);
  if (!map) return `[unknown] ${hex(addr)}`;
  const fileOffset = addr - map.start + map.offset;
  const s = symbolsOf(map.path);
  const base = map.path.slice(map.path.lastIndexOf("/") + 1);
  if (s) {
    // The last function starting at or before the offset, if it still covers it.
    let lo = 0;
    let hi = s.offsets.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s.offsets[mid] <= fileOffset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found >= 0 && fileOffset < s.ends[found]) {
      const off = fileOffset - s.offsets[found];
      return off === 0n ? s.names[found] : `${s.names[found]}+${off}`;
    }
  }
  return `[unknown] ${hex(addr)} (${base})`;
}
