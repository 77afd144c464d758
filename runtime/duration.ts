/**
 * Durations as people write them: "500ms", "5s", "2m", "1h", or a number of milliseconds.
 *
 * @module
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration or interval that cannot be used, said in one line. */
export class DurationError extends RangeError {
  /** `message`: the duration as given and how to write one, in one line. */
  constructor(message: string) {
    super(message);
    this.name = "DurationError";
  }
}

/**
 * Milliseconds in `d`; a one-line {@link DurationError} for anything else, and for 0 when
 * `positive` (an interval of 0 would print without end).
 */
export function parseDuration(d: string | number, positive = false): number {
  let ms: number | undefined;
  if (typeof d === "number") {
    if (Number.isFinite(d) && d >= 0) ms = d;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(d);
    if (m) ms = Number(m[1]) * UNITS[m[2]];
  }
  if (ms === undefined) {
    throw new DurationError(`Duration '${d}' is not valid: write it like 500ms, 5s, 2m or 1h`);
  }
  if (positive && ms <= 0) throw new DurationError(`Interval '${d}' must be longer than 0`);
  return ms;
}
