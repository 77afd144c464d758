/**
 * Mounted file systems by superblock device, from /proc/self/mountinfo, cached and refreshed
 * when a lookup misses (at most once per {@link MISS_REFRESH_INTERVAL_MS}).
 *
 * @module
 */
import { kernelDev } from "./block_devices.ts";
import { MISS_REFRESH_INTERVAL_MS, readTextOrUndefined } from "./files.ts";

// /proc/self/mountinfo escapes space, tab, newline and backslash in paths as \ooo octal.
function unescapeOctal(text: string): string {
  return text.includes("\\")
    ? text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
    : text;
}

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
