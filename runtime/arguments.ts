/**
 * Arguments of the public API checked where they are written, before anything is planned or
 * loaded: sizes and counts, and the functions given as lambdas and handlers. A bad one is a
 * one-line typed error that names the option and says what it takes.
 *
 * @module
 */

/** A size or count option out of its range: which option, what it was, what it takes. */
export class SizeError extends RangeError {
  /** `message`: the option, its value and the range it takes, in one line. */
  constructor(message: string) {
    super(message);
    this.name = "SizeError";
  }
}

/** A lambda or handler that is not a function (`.where(42)`), said with where it was given. */
export class NotAFunctionError extends TypeError {
  /** `message`: what was given where a function was expected, in one line. */
  constructor(message: string) {
    super(message);
    this.name = "NotAFunctionError";
  }
}

/**
 * A use of the public API that cannot be traced as written, such as a buffer asked of an
 * argument that is not a pointer, or a run with no probe: what was wrong and what to do.
 */
export class ArgumentError extends TypeError {
  /** `message`: what was wrong and what to do, in one line. */
  constructor(message: string) {
    super(message);
    this.name = "ArgumentError";
  }
}

/** The most entries a map option (aggregation or span `size`) may ask for: 2^20. */
export const MAX_ENTRIES = 1 << 20;

/** What {@link checkSize} accepts besides an integer. */
export interface SizeRange {
  /** Smallest value (default 1). */
  min?: number;
  /** Largest value (default {@link MAX_ENTRIES}). */
  max?: number;
  /** Only powers of two. */
  powerOfTwo?: boolean;
}

/**
 * `value` when it is an integer in range (by default 1 to 2^20); otherwise a {@link SizeError}
 * naming `option`. Number() of a string is not taken: `"8"` is as wrong as `8.5`.
 */
export function checkSize(option: string, value: unknown, range: SizeRange = {}): number {
  const { min = 1, max = MAX_ENTRIES, powerOfTwo = false } = range;
  const ok = typeof value === "number" && Number.isInteger(value) && value >= min &&
    value <= max && (!powerOfTwo || Number.isInteger(Math.log2(value)));
  if (!ok) {
    const what = powerOfTwo ? "a power of two" : "an integer";
    throw new SizeError(
      `${option} ${shown(value)} is not valid: give ${what} from ${min} to ${max}`,
    );
  }
  return value as number;
}

/** `value` when it is a function; otherwise a {@link NotAFunctionError} naming `what`. */
export function checkFunction<F>(what: string, value: F): F {
  if (typeof value !== "function") {
    throw new NotAFunctionError(
      `${what} must be a function, like (e) => e.pid, not ${shown(value)}`,
    );
  }
  return value;
}

/** A value as it was written, on one line and short. */
function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  const line = text.replace(/\s+/g, " ");
  return line.length > 40 ? `${line.slice(0, 37)}...` : line;
}
