/**
 * Kernel symbols from /proc/kallsyms: by address (the symbol containing it) and by name.
 *
 * @module
 */
import { readTextOrUndefined } from "./files.ts";

/** A kernel symbol from /proc/kallsyms. */
export interface KernelSymbol {
  name: string;
  address: bigint;
  /** The symbol's type letter: "T"/"t" text, "D"/"d" data, "R"/"r" read-only data, ... */
  type: string;
  /** The module the symbol belongs to ("ext4"), undefined for the kernel image itself. */
  module?: string;
}

interface SymbolTable {
  // Distinct addresses in ascending order, split into 32-bit halves so that the binary search
  // compares numbers, not bigints (which allocate), while kernel addresses need 64 bits.
  high: Uint32Array;
  low: Uint32Array;
  // The symbol that names each address (index into `symbols`).
  owner: Int32Array;
  // Every symbol, in /proc/kallsyms order.
  names: string[];
  types: string[];
  modules: (string | undefined)[];
  symbolHigh: Uint32Array;
  symbolLow: Uint32Array;
  // By-name lookups so far, and name → first index in file order once there have been many.
  nameLookups: number;
  byName?: Map<string, number>;
}

// undefined: not loaded yet; null: unusable (unreadable, or addresses hidden).
let ksyms: SymbolTable | null | undefined;

// Types whose value is a location in kernel memory. 'A'/'a' (absolute) symbols are constants
// or per-CPU offsets, so an address must not resolve to them.
function isAbsolute(type: string): boolean {
  return type === "A" || type === "a";
}

function isText(type: string): boolean {
  return type === "T" || type === "t" || type === "W" || type === "w";
}

function loadKsyms(): SymbolTable | null {
  const text = readTextOrUndefined("/proc/kallsyms");
  if (text === undefined) return null;
  const names: string[] = [];
  const types: string[] = [];
  const modules: (string | undefined)[] = [];
  const highs: number[] = [];
  const lows: number[] = [];
  let anyNonZero = false;
  // A hand-rolled scan: split("\n") plus split(" ") on ~200k lines doubles the load time.
  // Lines are "<hex address> <type> <name>[\t[<module>]]".
  let start = 0;
  let nextTab = -1;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const space1 = text.indexOf(" ", start);
    if (space1 > start && space1 + 3 < end) {
      const split = Math.max(start, space1 - 8);
      const high = split > start ? parseInt(text.slice(start, split), 16) : 0;
      const low = parseInt(text.slice(split, space1), 16);
      // Only module symbols have a tab, so searching for one on every line would scan to the
      // next module symbol (or the end of the text) each time: remember where the next one is.
      if (nextTab < start) {
        nextTab = text.indexOf("\t", start);
        if (nextTab < 0) nextTab = Infinity;
      }
      const nameEnd = nextTab < end ? nextTab : end;
      let module: string | undefined;
      if (nameEnd < end) {
        const tail = text.slice(nameEnd + 1, end).trim();
        module = tail.startsWith("[") && tail.endsWith("]") ? tail.slice(1, -1) : tail;
      }
      if (high !== 0 || low !== 0) anyNonZero = true;
      highs.push(high);
      lows.push(low);
      types.push(text[space1 + 1]);
      names.push(text.slice(space1 + 3, nameEnd));
      modules.push(module);
    }
    start = end + 1;
  }
  // With kptr_restrict (and always for non-root when it is 1) the kernel prints every address
  // as zeros. A table of zeros would name every address after the first symbol, so treat it as
  // no table at all.
  if (!anyNonZero) return null;

  // The kernel image's symbols come sorted, module and BPF symbols follow in load order; a
  // stable sort on the index keeps file order among aliases (symbols at the same address).
  const order: number[] = [];
  for (let i = 0; i < names.length; i++) if (!isAbsolute(types[i])) order.push(i);
  order.sort((a, b) => (highs[a] - highs[b]) || (lows[a] - lows[b]) || (a - b));

  const high = new Uint32Array(order.length);
  const low = new Uint32Array(order.length);
  const owner = new Int32Array(order.length);
  let count = 0;
  for (const i of order) {
    if (count > 0 && high[count - 1] === highs[i] && low[count - 1] === lows[i]) {
      // An alias: the first text symbol at an address names it, else the first symbol.
      if (!isText(types[owner[count - 1]]) && isText(types[i])) owner[count - 1] = i;
      continue;
    }
    high[count] = highs[i];
    low[count] = lows[i];
    owner[count] = i;
    count++;
  }
  return {
    high: high.slice(0, count),
    low: low.slice(0, count),
    owner: owner.slice(0, count),
    names,
    types,
    modules,
    symbolHigh: Uint32Array.from(highs),
    symbolLow: Uint32Array.from(lows),
    nameLookups: 0,
  };
}

function symbolTable(): SymbolTable | null {
  if (ksyms === undefined) ksyms = loadKsyms();
  return ksyms;
}

function symbolAt(table: SymbolTable, index: number): KernelSymbol {
  const symbol: KernelSymbol = {
    name: table.names[index],
    address: (BigInt(table.symbolHigh[index]) << 32n) | BigInt(table.symbolLow[index]),
    type: table.types[index],
  };
  const module = table.modules[index];
  if (module !== undefined) symbol.module = module;
  return symbol;
}

/**
 * Drops the cached /proc/kallsyms; the next lookup reads it again. Symbols change when modules
 * load or BPF programs are JIT-compiled. Lookups do not do this on a miss: a reload costs tens
 * of milliseconds, and a misspelled name would pay it on every call.
 */
export function refreshKsyms(): void {
  ksyms = undefined;
}

/**
 * The kernel symbol containing `addr`: the nearest symbol at or below it in /proc/kallsyms.
 * Undefined when the address is below every symbol, or when kallsyms hides addresses (not
 * root, or kernel.kptr_restrict = 2). Loaded once, on first use.
 */
export function ksym(addr: bigint): KernelSymbol | undefined {
  const table = symbolTable();
  if (table === null || addr < 0n || addr > 0xffff_ffff_ffff_ffffn) return undefined;
  const high = Number(addr >> 32n);
  const low = Number(addr & 0xffff_ffffn);
  // The last index whose address is <= addr.
  let lo = 0;
  let hi = table.high.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const h = table.high[mid];
    if (h < high || (h === high && table.low[mid] <= low)) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? undefined : symbolAt(table, table.owner[found]);
}

/** The name of the kernel symbol containing `addr` (see {@link ksym}), or undefined. */
export function ksymName(addr: bigint): string | undefined {
  return ksym(addr)?.name;
}

// A compile looks up a handful of names: a scan of the name list costs about a millisecond,
// a name → index map about 50. Scan for the first few lookups, build the map after.
const LINEAR_NAME_LOOKUPS = 16;

/**
 * The address of kernel symbol `name`, or undefined when there is no such symbol or kallsyms
 * hides addresses. When several symbols share a name (static functions of different files),
 * the first in /proc/kallsyms wins.
 */
export function ksymAddress(name: string): bigint | undefined {
  const table = symbolTable();
  if (table === null) return undefined;
  let index: number | undefined;
  if (table.byName !== undefined) index = table.byName.get(name);
  else if (++table.nameLookups <= LINEAR_NAME_LOOKUPS) {
    index = table.names.indexOf(name);
    if (index < 0) index = undefined;
  } else {
    // Set in reverse so that the first of several same-named symbols is the one kept.
    const byName = new Map<string, number>();
    for (let i = table.names.length - 1; i >= 0; i--) byName.set(table.names[i], i);
    table.byName = byName;
    index = byName.get(name);
  }
  return index === undefined ? undefined : symbolAt(table, index).address;
}

/** The names of every kernel function (text symbol) in /proc/kallsyms, each once. */
export function kernelFunctions(): string[] {
  const table = symbolTable();
  if (table === null) return [];
  return [...new Set(table.names.filter((_, i) => isText(table.types[i])))];
}
