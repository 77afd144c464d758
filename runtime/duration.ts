/**
 * Durations as people write them: "500ms", "5s", "2m", "1h", or a number of milliseconds.
 *
 * @module
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in `d`; a one-line RangeError for anything else. */
export function parseDuration(d: string | number): number {
  if (typeof d === "number") {
    if (Number.isFinite(d) && d >= 0) return d;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(d);
    if (m) return Number(m[1]) * UNITS[m[2]];
  }
  throw new RangeError(`Duration '${d}' is not valid: write it like 500ms, 5s, 2m or 1h`);
}
