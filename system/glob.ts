/**
 * Glob patterns over probe names: `*` (any run of characters), `?` (one character) and
 * `{a,b}` (either), everything else literal. Patterns are user input, so they never become
 * regular expressions: matching walks the pattern once per name with the classic backtracking
 * of the last `*`, in time bounded by name length × pattern length, and patterns and their
 * brace expansions are bounded in size.
 *
 * @module
 */

/** Longest pattern taken, in characters. */
export const MAX_GLOB_LENGTH = 256;
/** Most alternatives the braces of one pattern expand to. */
export const MAX_ALTERNATIVES = 64;

/** A pattern that is not a glob this module takes: what is wrong with it, in one line. */
export class GlobError extends Error {
  /** `message`: the pattern and what is wrong with it. */
  constructor(message: string) {
    super(message);
    this.name = "GlobError";
  }
}

/** True when `text` has a wildcard or braces, i.e. names possibly many things. */
export function hasGlob(text: string): boolean {
  return /[*?{]/.test(text);
}

/** The alternatives `{a,b}` groups expand to, in order; a pattern without braces is itself. */
export function expandBraces(glob: string): string[] {
  if (glob.length > MAX_GLOB_LENGTH) {
    throw new GlobError(
      `Pattern of ${glob.length} characters is too long (at most ${MAX_GLOB_LENGTH})`,
    );
  }
  let out = [""];
  for (let at = 0; at < glob.length;) {
    const open = glob.indexOf("{", at);
    const close = glob.indexOf("}", at);
    if (close >= 0 && (open < 0 || close < open)) {
      throw new GlobError(`Pattern '${glob}' has a '}' without a '{'`);
    }
    if (open < 0) {
      out = out.map((o) => o + glob.slice(at));
      break;
    }
    if (close < 0) throw new GlobError(`Pattern '${glob}' has a '{' without a '}'`);
    const inner = glob.slice(open + 1, close);
    if (inner.includes("{")) throw new GlobError(`Pattern '${glob}' nests braces (unsupported)`);
    const head = glob.slice(at, open);
    out = out.flatMap((o) => inner.split(",").map((alt) => o + head + alt));
    if (out.length > MAX_ALTERNATIVES) {
      throw new GlobError(
        `Pattern '${glob}' expands to more than ${MAX_ALTERNATIVES} alternatives`,
      );
    }
    at = close + 1;
  }
  return out;
}

/** Whether `name` matches `glob`, which has `*` and `?` but no braces. */
function matchOne(glob: string, name: string): boolean {
  let g = 0, n = 0;
  // Where the last `*` was, and the name position it is tried to stop at.
  let star = -1, resume = 0;
  while (n < name.length) {
    if (g < glob.length && (glob[g] === "?" || glob[g] === name[n])) {
      g++, n++;
    } else if (g < glob.length && glob[g] === "*") {
      star = g++;
      resume = n;
    } else if (star >= 0) {
      // Let the last `*` take one more character and try again from after it.
      g = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (glob[g] === "*") g++;
  return g === glob.length;
}

/**
 * A test of whole names against `glob` ("syscall:open*", "{read,write}", "x?z"). Throws
 * {@link GlobError} for a pattern too long, with unbalanced or nested braces, or expanding to
 * too many alternatives.
 */
export function globMatcher(glob: string): (name: string) => boolean {
  const alternatives = expandBraces(glob);
  return (name) => alternatives.some((alt) => matchOne(alt, name));
}
