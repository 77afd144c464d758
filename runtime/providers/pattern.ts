/**
 * Probe patterns (`syscall.on("*:entry")`, `tracepoint("block:*")`): the names a glob picks
 * out of those a provider has, with one-line errors for a pattern that is malformed, matches
 * nothing (with the closest names), or matches too many to attach.
 *
 * @module
 */
import { GlobError, globMatcher } from "../../system/glob.ts";
import { closeMatches } from "../../system/suggest.ts";
import { ProbeNotFoundError } from "../../system/tracefs.ts";
import { ArgumentError } from "../arguments.ts";

/** A pattern that matched no probe: "No syscall matches 'reed*'. Did you mean: read?" */
export class NoMatchError extends ProbeNotFoundError {
  /** `kind` probes ("syscall") matched by `pattern`: none; `suggestions` are close names. */
  constructor(kind: string, pattern: string, suggestions: string[]) {
    super(kind, pattern, suggestions);
    const hint = suggestions.length > 0 ? ` Did you mean: ${suggestions.join(", ")}?` : "";
    this.message = `No ${kind} matches '${pattern}'.${hint}`;
    this.name = "NoMatchError";
  }
}

/** What to match a pattern against. */
export interface PatternSpace {
  /** What the names are, for messages: "syscall", "tracepoint". */
  kind: string;
  /** Every name there is. */
  names: readonly string[];
  /** Most matches taken; more is an error saying `why`. */
  max?: { count: number; why: string };
  /** Names to suggest when nothing matches (default: the closest of `names`). */
  suggest?: (literal: string) => string[];
}

const capitalized = (s: string) => s[0].toUpperCase() + s.slice(1);

/**
 * Throws an {@link ArgumentError} for a pattern with characters no probe name has (names are
 * printable ASCII), before any message quotes it: a newline in it would make two lines.
 */
export function checkPrintable(kind: string, pattern: string): void {
  if (/[^\x20-\x7e]/.test(pattern)) {
    throw new ArgumentError(
      `${capitalized(kind)} pattern ${JSON.stringify(pattern)} has characters no name has`,
    );
  }
}

/** The glob's first alternative without its wildcards: what a user meant, near enough. */
function literalOf(glob: string): string {
  return glob.replace(/\{([^,}]*)[^}]*\}/g, "$1").replace(/[*?]/g, "");
}

/**
 * The names of `space` that `glob` matches, in their order. Throws an {@link ArgumentError}
 * for a malformed pattern or too many matches, a {@link NoMatchError} for none.
 */
export function matchPattern(glob: string, space: PatternSpace): string[] {
  checkPrintable(space.kind, glob);
  let match;
  try {
    match = globMatcher(glob);
  } catch (e) {
    if (!(e instanceof GlobError)) throw e;
    // "Pattern '{a' has ..." as "Syscall pattern '{a' has ...".
    throw new ArgumentError(`${capitalized(space.kind)} p${e.message.slice(1)}`);
  }
  const found = space.names.filter(match);
  if (found.length === 0) {
    const literal = literalOf(glob);
    const suggestions = space.suggest?.(literal) ?? closeMatches(literal, space.names);
    throw new NoMatchError(space.kind, glob, suggestions);
  }
  if (space.max && found.length > space.max.count) {
    throw new ArgumentError(
      `${capitalized(space.kind)} pattern '${glob}' matches ${found.length} ${space.kind}s; ` +
        `at most ${space.max.count} are taken (${space.max.why}): narrow it`,
    );
  }
  return found;
}
