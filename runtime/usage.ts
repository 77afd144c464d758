/**
 * Which errors are the user's to fix (a probe name, a lambda, an option, a target) rather than
 * a failure of the machine: the CLI and recipes print them as one line and exit 2.
 *
 * Known by class name, along the prototype chain, and importing nothing: a pinned remote
 * recipe throws its own copy's classes, and `probe run` preloads this module into graphs whose
 * lockfile holds only the recipe's modules.
 *
 * @module
 */

/** The usage errors' classes, by name; their subclasses are usage errors too. */
export const USAGE_ERROR_CLASSES: ReadonlySet<string> = new Set([
  "LambdaError",
  "UnknownFieldError",
  "ProbeNotFoundError",
  "TargetError",
  "DurationError",
  "SizeError",
  "NotAFunctionError",
  "ArgumentError",
]);

/** True for the typed errors that mean the input was wrong (exit code 2). */
export function isUsageError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  for (let p = Object.getPrototypeOf(e); p && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    if (USAGE_ERROR_CLASSES.has(p.constructor.name)) return true;
  }
  return false;
}
