/**
 * The console a one-liner sees: `console.log(e.comm, e.args.filename)` prints names that
 * traced processes chose, and an escape sequence in one must not drive the terminal of whoever
 * runs `probe -e` (as root). Text arguments are escaped with printable(); objects already are,
 * by Deno.inspect.
 *
 * @module
 */
import { printable } from "../runtime/printable.ts";

const escaped = (arg: unknown) => typeof arg === "string" ? printable(arg) : arg;

/**
 * The global console, but every method (log, error, count, group, assert...) gets its string
 * arguments with control characters escaped as strace writes them.
 */
export const escapedConsole: Console = new Proxy(globalThis.console, {
  get(target, key) {
    const value = Reflect.get(target, key);
    return typeof value === "function"
      ? (...args: unknown[]) => value.apply(target, args.map(escaped))
      : value;
  },
});
