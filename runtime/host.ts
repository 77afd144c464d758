/**
 * How a program that hosts recipes (the probe CLI's `run`) changes what `run()` does in them,
 * through this API rather than the environment: `--explain`, and the host's own pid, which
 * system-wide tracing leaves out as it leaves out the recipe's. The setting lives on `globalThis`
 * under a registered symbol, so a recipe's own copy of the library (a pinned remote graph)
 * sees the host's setting too.
 *
 * @module
 */
import type { RunOptions, RunSummary, Session } from "./session.ts";

/** What `run()` does instead of running the session. */
export type RunHook = (session: Session, options: RunOptions) => Promise<RunSummary>;

const KEY = Symbol.for("tsprobe.runHook");
const PIDS_KEY = Symbol.for("tsprobe.hostPids");
const slot = globalThis as unknown as Record<symbol, RunHook | undefined>;
const pidsSlot = globalThis as unknown as Record<symbol, number[] | undefined>;

/** Makes every later `run()` call `hook` instead (undefined: run again). */
export function setRunHook(hook: RunHook | undefined): void {
  slot[KEY] = hook;
}

/** The hook a host set, if any. */
export function runHook(): RunHook | undefined {
  return slot[KEY];
}

/** Makes `pids` (the host's own processes) part of the tracer, left out like this process. */
export function setHostPids(pids: number[]): void {
  pidsSlot[PIDS_KEY] = [...pids];
}

/** The processes of the tracer: this one and its host's. */
export function tracerPids(): number[] {
  return [Deno.pid, ...(pidsSlot[PIDS_KEY] ?? [])];
}
