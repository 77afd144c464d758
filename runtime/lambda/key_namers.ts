/**
 * Functions a key lambda may call on a key part to name it, like bpftrace's `ksym()` in a map
 * key: `count((e) => syscallName(e.args.id))` keeps the number in the kernel and shows the name
 * (in text, JSON and metrics). Providers register the namers they bring; the compiler only
 * knows them by name.
 *
 * @module
 */

/** A namer: the name of the part's kernel value, and the key part's default name. */
export interface KeyNamer {
  /** The text shown for a kernel value. */
  name(value: unknown): string;
  /** What the part is called in JSON and metrics when the key does not name it. */
  part: string;
}

const namers = new Map<string, KeyNamer>();

/** Makes `fn(x)` in key lambdas show `x` through `namer` (a provider's, once at import). */
export function registerKeyNamer(fn: string, namer: KeyNamer): void {
  namers.set(fn, namer);
}

/** The namer a key lambda's call of `fn` stands for, if any. */
export function keyNamer(fn: string): KeyNamer | undefined {
  return namers.get(fn);
}

/** The names of the namers registered, for error messages. */
export function keyNamerNames(): string[] {
  return [...namers.keys()];
}
