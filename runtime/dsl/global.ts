/**
 * The global session of the scripting surface: every provider's probes join it, and {@link run},
 * {@link explain} and {@link exit} act on it. Each provider's facade is a module of its own beside
 * this one, so that a one-liner loads only the providers it names.
 *
 * @module
 */
import { type Handler, type RunOptions, type RunSummary, Session } from "../session.ts";
import { Stream } from "../stream.ts";
import { checkFunction } from "../arguments.ts";
import { runHook } from "../host.ts";
import type { ProbeRequest } from "../providers/provider.ts";

/** A glob over probe names: has `*` (any run of characters), `?` (one) or `{a,b}` (either). */
export type Glob = `${string}${"*" | "?" | "{"}${string}`;

let current = new Session();

/**
 * The session that streams, aggregations and {@link run} use: a new one after each run.
 *
 * @example What the probes so far would load
 * ```ts ignore
 * // ignore: explain() reads the kernel's tracepoint formats, which only root may read.
 * import { session, syscall } from "../dsl.ts";
 * syscall.on("read:return").hist((e) => e.ret);
 * console.log(await session().explain());
 * ```
 */
export function session(): Session {
  return current;
}

/** A stream of the global session's probe `request`, before any predicate. */
export function stream<E>(request: ProbeRequest): Stream<E> {
  return new Stream<E>(session, { kind: "probe", request, predicates: [] });
}

/**
 * What a provider's `on()` does: checks the handler (named as `call`, e.g. `io.on("start")`)
 * before the probe is resolved, makes the stream, and subscribes the handler when there is one.
 */
export function on<E>(
  call: string,
  handler: Handler<E> | undefined,
  request: () => ProbeRequest,
): Stream<E> {
  if (handler !== undefined) checkFunction(`${call}'s handler`, handler);
  const s = stream<E>(request());
  if (handler) s.on(handler);
  return s;
}

/**
 * What the probes added so far would do, without loading anything: the fields captured, what
 * runs in the kernel and what in JavaScript, the maps, and the BPF programs as assembly.
 */
export function explain(options: RunOptions = {}): Promise<string> {
  return current.explain(options);
}

/**
 * Runs every probe added so far until the duration ends, Ctrl-C or SIGTERM, {@link exit}, or
 * the traced command exits. Afterwards nothing of the session stays in the kernel, and the
 * next probes added start a new session.
 *
 * @example Trace one command from its first instruction
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { run, syscall } from "../dsl.ts";
 * syscall.on("openat:entry", (e) => console.log(e.args.filename));
 * const summary = await run({ command: ["ls", "/"] });
 * console.log(summary.commandExitCode, summary.dropped);
 * ```
 */
export async function run(options: RunOptions = {}): Promise<RunSummary> {
  const s = current;
  // A host's hook (`probe run --explain`: show what would load, load nothing).
  const hook = runHook();
  if (hook) return hook(s, options);
  try {
    return await s.run(options);
  } finally {
    if (current === s) current = new Session();
  }
}

/** Ends the running session from a handler (like DTrace's `exit()`). */
export function exit(): void {
  current.stop("exit");
}
