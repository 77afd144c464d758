/**
 * Block devices by kernel `dev_t` or by name, from sysfs and /proc/devices, and the kernel's
 * encoding of device numbers. Decoders call these once per event, so every answer comes from an
 * in-memory cache, filled on first use and refreshed when a lookup misses (devices appear
 * during a session), at most once per {@link MISS_REFRESH_INTERVAL_MS}.
 *
 * @module
 */
import { MISS_REFRESH_INTERVAL_MS, pathExists, readTextOrUndefined } from "./files.ts";

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

/**
 * The disks that take bios without queueing requests (zram, device-mapper, md) and can hold
 * data: those without an `mq` directory in /sys/block, and not of size 0 (a zram device not
 * given a size yet takes no I/O).
 */
export function bioBasedDisks(): string[] {
  try {
    return [...Deno.readDirSync("/sys/block")].map((d) => d.name).filter((name) =>
      !pathExists(`/sys/block/${name}/mq`) &&
      Number(readTextOrUndefined(`/sys/block/${name}/size`) ?? 0) > 0
    );
  } catch {
    return [];
  }
}
