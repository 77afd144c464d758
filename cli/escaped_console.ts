/**
 * The console a one-liner sees: `console.log(e.comm, e.args.filename)` prints names that
 * traced processes chose, and an escape sequence in one must not drive the terminal of whoever
 * runs `probe -e` (as root). Text arguments are escaped with printable(); objects already are,
 * by Deno.inspect.
 *
 * @module
 */
import { printable } from "../runtime/printable.ts";

type Method = "log" | "info" | "debug" | "warn" | "error" | "trace";

/** `console.<name>` with its string arguments escaped. */
function escaping(name: Method) {
  return (...args: unknown[]) =>
    globalThis.console[name](...args.map((a) => typeof a === "string" ? printable(a) : a));
}

/**
 * The global console, but `log`, `info`, `debug`, `warn`, `error` and `trace` print string
 * arguments with control characters escaped as strace writes them.
 */
export const escapedConsole: Console = Object.assign(Object.create(globalThis.console), {
  log: escaping("log"),
  info: escaping("info"),
  debug: escaping("debug"),
  warn: escaping("warn"),
  error: escaping("error"),
  trace: escaping("trace"),
});
