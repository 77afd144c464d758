/**
 * How a program that hosts recipes (the probe CLI's `run --explain`) changes what `run()` does
 * in them, through this API rather than the environment. The setting lives on `globalThis`
 * under a registered symbol, so a recipe's own copy of the library (a pinned remote graph)
 * sees the host's setting too.
 *
 * @module
 */
import type { RunOptions, RunSummary, Session } from "./session.ts";

/** What `run()` does instead of running the session. */
export type RunHook = (session: Session, options: RunOptions) => Promise<RunSummary>;

const KEY = Symbol.for("tsprobe.runHook");
const slot = globalThis as unknown as Record<symbol, RunHook | undefined>;

/** Makes every later `run()` call `hook` instead (undefined: run again). */
export function setRunHook(hook: RunHook | undefined): void {
  slot[KEY] = hook;
}

/** The hook a host set, if any. */
export function runHook(): RunHook | undefined {
  return slot[KEY];
}
