/**
 * Small synchronous lookups of system information that decoding and compiling need: block
 * devices by kernel `dev_t`, mounted file systems by superblock device, and kernel symbols.
 *
 * Decoders call these once per event, so every answer comes from an in-memory cache. A cache
 * is filled on first use and refreshed only when asked, or when a lookup misses (devices and
 * mounts appear during a session), at most once per second so that a stream of events for an
 * unknown device does not turn into a stream of file reads.
 *
 * Pure Deno: no FFI, so it can be used and tested without libbpf.
 *
 * @module
 */

/** How long a miss-triggered refresh waits after the previous one, in milliseconds. */
const MISS_REFRESH_INTERVAL_MS = 1000;

// ---------------------------------------------------------------------------------------------
// Device numbers

// Inside the kernel a dev_t is `major << MINORBITS | minor` with MINORBITS = 20 (include/linux/
// kdev_t.h), and that is what BPF reads from struct block_device, struct super_block and
// tracepoint records. User space (stat's st_dev, /proc/diskstats) uses a different packing.
const MINOR_BITS = 20;
const MINOR_MASK = (1 << MINOR_BITS) - 1;
const MAX_MAJOR = (1 << (32 - MINOR_BITS)) - 1;

/**
 * The kernel's internal encoding of device `major:minor` (`major << 20 | minor`), as found in
 * `dev_t` members of kernel structures. Throws a RangeError for numbers that do not fit.
 */
export function kernelDev(major: number, minor: number): number {
  if (!Number.isInteger(major) || major < 0 || major > MAX_MAJOR) {
    throw new RangeError(`Device major must be an integer in 0..${MAX_MAJOR}, got ${major}`);
  }
  if (!Number.isInteger(minor) || minor < 0 || minor > MINOR_MASK) {
    throw new RangeError(`Device minor must be an integer in 0..${MINOR_MASK}, got ${minor}`);
  }
  // `>>> 0` keeps majors of 2048 and up positive: `<<` yields a signed 32-bit result.
  return ((major << MINOR_BITS) | minor) >>> 0;
}

/** The major number of a kernel-encoded `dev_t` (see {@link kernelDev}). */
export function devMajor(dev: number): number {
  return dev >>> MINOR_BITS;
}

/** The minor number of a kernel-encoded `dev_t` (see {@link kernelDev}). */
export function devMinor(dev: number): number {
  return (dev & MINOR_MASK) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function readTextOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // Missing (device gone, no sysfs in this container) or unreadable: both mean "no answer".
    return undefined;
  }
}

// /proc/self/mountinfo escapes space, tab, newline and backslash in paths as \ooo octal.
function unescapeOctal(text: string): string {
  return text.includes("\\")
    ? text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
    : text;
}

// ---------------------------------------------------------------------------------------------
// Block devices

/** A block device (whole disk or partition), as sysfs and /proc/devices describe it. */
export interface BlockDevice {
  /** The kernel name, as iostat and /proc/diskstats show it: "vda1", "loop0", "dm-0". */
  name: string;
  /** "/dev/" + {@link name}. */
  path: string;
  /** The driver that registered the major in /proc/devices ("loop", "virtblk"), or "unknown". */
  driver: string;
  major: number;
  minor: number;
  /** The partition number (uevent PARTN); 0 for a whole disk. */
  partition: number;
}

const SYS_DEV_BLOCK = "/sys/dev/block";
const SYS_CLASS_BLOCK = "/sys/class/block";

let blockByDev: Map<number, BlockDevice> | undefined;
let blockByName = new Map<string, BlockDevice>();
let blockDrivers = new Map<number, string>();
// When each missed key ("dev:N", "name:X") was last probed, so that a device that does not
// exist costs one failed open per second rather than one per event.
const blockMisses = new Map<string, number>();
// A cap on the miss table: lookups with arbitrary numbers must not grow it without bound.
const MAX_REMEMBERED_MISSES = 4096;

// The "Block devices:" section of /proc/devices: "  7 loop", "254 virtblk".
function readBlockDrivers(): Map<number, string> {
  const drivers = new Map<number, string>();
  const text = readTextOrUndefined("/proc/devices") ?? "";
  const at = text.indexOf("Block devices:");
  if (at < 0) return drivers;
  for (const line of text.slice(at).split("\n").slice(1)) {
    const match = /^\s*(\d+)\s+(\S+)/.exec(line);
    if (match) drivers.set(Number(match[1]), match[2]);
  }
  return drivers;
}

function parseUevent(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return fields;
}

// Reads one device from /sys/dev/block/<major>:<minor>; undefined when it does not exist.
function probeBlockDevice(major: number, minor: number): BlockDevice | undefined {
  const dir = `${SYS_DEV_BLOCK}/${major}:${minor}`;
  const uevent = readTextOrUndefined(`${dir}/uevent`);
  if (uevent === undefined) return undefined;
  const fields = parseUevent(uevent);
  let name = fields.get("DEVNAME");
  if (name === undefined || name === "") {
    // Without DEVNAME, the sysfs directory name is the kernel name, with '/' spelled '!'
    // ("cciss!c0d0").
    try {
      const target = Deno.readLinkSync(dir);
      name = target.slice(target.lastIndexOf("/") + 1).replaceAll("!", "/");
    } catch {
      return undefined;
    }
  }
  if (!blockDrivers.has(major)) blockDrivers = readBlockDrivers(); // A driver loaded since.
  return Object.freeze({
    name,
    path: `/dev/${name}`,
    driver: blockDrivers.get(major) ?? "unknown",
    major,
    minor,
    partition: Number(fields.get("PARTN") ?? 0) || 0,
  });
}

function rememberBlockDevice(device: BlockDevice): void {
  blockByDev!.set(kernelDev(device.major, device.minor), device);
  blockByName.set(device.name, device);
}

/**
 * Rereads every block device from /sys/dev/block and the driver names from /proc/devices.
 * Lookups do this themselves on first use; call it after adding or removing many devices.
 */
export function refreshBlockDevices(): void {
  blockDrivers = readBlockDrivers();
  blockByDev = new Map();
  blockByName = new Map();
  blockMisses.clear();
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(SYS_DEV_BLOCK)];
  } catch {
    // No sysfs (some containers): every lookup misses, which callers handle.
  }
  for (const entry of entries) {
    const match = /^(\d+):(\d+)$/.exec(entry.name);
    if (!match) continue;
    const device = probeBlockDevice(Number(match[1]), Number(match[2]));
    if (device) rememberBlockDevice(device);
  }
}

// Whether a missed `key` may be probed again now; records the probe when it may.
function mayProbeMiss(key: string): boolean {
  const now = performance.now();
  const last = blockMisses.get(key);
  if (last !== undefined && now - last < MISS_REFRESH_INTERVAL_MS) return false;
  if (blockMisses.size >= MAX_REMEMBERED_MISSES) blockMisses.clear();
  blockMisses.set(key, now);
  return true;
}

/**
 * The block device with kernel-encoded number `dev` (see {@link kernelDev}), or undefined when
 * there is none. Cached; on a miss the device is looked up again in sysfs (at most once a
 * second per number), so devices attached during a session are found.
 */
export function blockDevice(dev: number): BlockDevice | undefined {
  if (blockByDev === undefined) refreshBlockDevices();
  const cached = blockByDev!.get(dev);
  if (cached !== undefined || !mayProbeMiss(`dev:${dev}`)) return cached;
  const device = probeBlockDevice(devMajor(dev), devMinor(dev));
  if (device) rememberBlockDevice(device);
  return device;
}

/**
 * The block device called `name`: "loop0", "/dev/loop0", or any path that resolves to a device
 * node under /dev ("/dev/mapper/root", "/dev/disk/by-uuid/..."). Undefined when there is none.
 * Cached like {@link blockDevice}.
 */
export function blockDeviceByName(name: string): BlockDevice | undefined {
  if (blockByDev === undefined) refreshBlockDevices();
  let key = name.startsWith("/dev/") ? name.slice("/dev/".length) : name;
  const cached = blockByName.get(key);
  if (cached !== undefined) return cached;
  if (name.startsWith("/")) {
    // A symlink such as /dev/mapper/x or /dev/disk/by-id/y: name the node it points to.
    try {
      const real = Deno.realPathSync(name);
      if (real.startsWith("/dev/")) key = real.slice("/dev/".length);
      const hit = blockByName.get(key);
      if (hit !== undefined) return hit;
    } catch {
      return undefined; // No such path.
    }
  }
  if (!mayProbeMiss(`name:${key}`)) return undefined;
  // Sysfs spells '/' in kernel names as '!' ("cciss/c0d0" is /sys/class/block/cciss!c0d0).
  const numbers = readTextOrUndefined(`${SYS_CLASS_BLOCK}/${key.replaceAll("/", "!")}/dev`);
  const match = numbers && /^(\d+):(\d+)/.exec(numbers.trim());
  if (!match) return undefined;
  const device = probeBlockDevice(Number(match[1]), Number(match[2]));
  if (device) rememberBlockDevice(device);
  return device;
}

// ---------------------------------------------------------------------------------------------
// Mounts

/** Where a file system (one superblock) is mounted. */
export interface MountInfo {
  /** The mount point, octal escapes undone: "/", "/home", "/mnt/with space". */
  mountPoint: string;
  /**
   * The directory of the file system that is mounted there: "/" for a normal mount, a
   * subdirectory for a bind mount (used only when the file system has no mount of its root).
   */
  root: string;
  /** The file system type: "ext4", "tmpfs", "proc". */
  fsType: string;
  /** The mount source: "/dev/vda1", "tmpfs", "none". */
  source: string;
}

let mounts: Map<number, MountInfo> | undefined;
let mountsLoadedAt = -Infinity;

// Whether `candidate` is a better mount to name a superblock by than `current`: a mount of the
// file system's root beats a bind mount of a subdirectory, then the shorter mount point wins.
function betterMount(candidate: MountInfo, current: MountInfo): boolean {
  const candidateRoot = candidate.root === "/";
  const currentRoot = current.root === "/";
  if (candidateRoot !== currentRoot) return candidateRoot;
  return candidate.mountPoint.length < current.mountPoint.length;
}

/**
 * Parses the text of /proc/self/mountinfo into superblock device (kernel encoding, see
 * {@link kernelDev}) → mount. A superblock mounted several times is named by its shortest
 * mount point among those that mount the file system's root.
 */
export function parseMountinfo(text: string): Map<number, MountInfo> {
  const result = new Map<number, MountInfo>();
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (separator < 0 || fields.length < separator + 3) continue;
    const numbers = /^(\d+):(\d+)$/.exec(fields[2]);
    if (!numbers) continue;
    const dev = kernelDev(Number(numbers[1]), Number(numbers[2]));
    const mount: MountInfo = Object.freeze({
      mountPoint: unescapeOctal(fields[4]),
      root: unescapeOctal(fields[3]),
      fsType: unescapeOctal(fields[separator + 1]),
      source: unescapeOctal(fields[separator + 2]),
    });
    const current = result.get(dev);
    if (current === undefined || betterMount(mount, current)) result.set(dev, mount);
  }
  return result;
}

/** Rereads /proc/self/mountinfo; {@link mountsByDev} then returns the new map. */
export function refreshMounts(): void {
  mounts = parseMountinfo(readTextOrUndefined("/proc/self/mountinfo") ?? "");
  mountsLoadedAt = performance.now();
}

/**
 * Every mounted file system of this process's mount namespace, by superblock device in the
 * kernel encoding (see {@link kernelDev}). Read once and cached; the map is shared, so do not
 * modify it. Call {@link refreshMounts} to see mounts made since, or use {@link mountForDev},
 * which refreshes on a miss.
 */
export function mountsByDev(): Map<number, MountInfo> {
  if (mounts === undefined) refreshMounts();
  return mounts!;
}

/**
 * The mount of the file system with kernel-encoded device `dev`, or undefined. A miss rereads
 * /proc/self/mountinfo, at most once a second, so file systems mounted during a session are
 * found.
 */
export function mountForDev(dev: number): MountInfo | undefined {
  const hit = mountsByDev().get(dev);
  if (hit !== undefined) return hit;
  if (performance.now() - mountsLoadedAt < MISS_REFRESH_INTERVAL_MS) return undefined;
  refreshMounts();
  return mounts!.get(dev);
}

// ---------------------------------------------------------------------------------------------
// Kernel symbols

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

/** Whether a path exists (a sysfs or procfs entry, a device, a file). */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
