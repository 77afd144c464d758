/**
 * Reading the small files of /proc and /sys that the system lookups answer from, and how often
 * a lookup that missed may read them again.
 *
 * @module
 */

/**
 * How long a miss-triggered refresh waits after the previous one, in milliseconds: a stream of
 * events for an unknown device must not become a stream of file reads.
 */
export const MISS_REFRESH_INTERVAL_MS = 1000;

/** The text of a file, or undefined when it is missing or unreadable (both mean "no answer"). */
export function readTextOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
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

const encoder = new TextEncoder();

/** Writes all of `text` to `to` (a write may take only part of it: a pipe, a signal). */
export function writeAllSync(to: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(to.writeSync(bytes));
}
