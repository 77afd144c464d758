/**
 * probe's command line, read as Node's `util.parseArgs` reads it (tokens, and the strict parse
 * with its error messages), without it: importing node:util loads Deno's Node compatibility
 * layer, 5-10 ms of every probe's start. A test holds the two to the same results.
 *
 * @module
 */

/** An option: a flag, or one that takes a value; `short` is its one-letter name. */
export interface OptionSpec {
  type: "boolean" | "string";
  short?: string;
  default?: string;
}

/** What one argument (or one letter of a group such as `-qv`) is. */
export type Token =
  | {
    kind: "option";
    name: string;
    rawName: string;
    index: number;
    value: string | undefined;
    inlineValue: boolean | undefined;
  }
  | { kind: "positional"; index: number; value: string }
  | { kind: "option-terminator"; index: number };

/** The values of `O`'s options that were given (or have a default). */
export type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean;
};

/** probe's options. */
export const PROBE_OPTIONS = {
  eval: { type: "string", short: "e" },
  list: { type: "boolean", short: "l" },
  verbose: { type: "boolean", short: "v" },
  pid: { type: "string", short: "p" },
  command: { type: "string", short: "c" },
  duration: { type: "string", short: "d" },
  interval: { type: "string", short: "i" },
  output: { type: "string", short: "o" },
  format: { type: "string", default: "text" },
  explain: { type: "boolean" },
  trust: { type: "boolean" },
  integrity: { type: "string" },
  module: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  quiet: { type: "boolean", short: "q" },
  metrics: { type: "string" },
} as const satisfies Record<string, OptionSpec>;

/** A misuse of the options, in parseArgs' words. */
export class ArgsError extends TypeError {}

/** The long name of short option `letter` (the letter itself when none has it). */
function longName(letter: string, options: Record<string, OptionSpec>): string {
  return Object.entries(options).find(([, o]) => o.short === letter)?.[0] ?? letter;
}

/** `args` as tokens, as parseArgs gives them with `tokens: true` and `strict: false`. */
export function argTokens(args: string[], options: Record<string, OptionSpec>): Token[] {
  const takesValue = (name: string) =>
    Object.hasOwn(options, name) && options[name].type === "string";
  const tokens: Token[] = [];
  const rest = [...args];
  let index = -1;
  let grouped = 0; // letters of a group still to read, at the group's index
  const option = (name: string, rawName: string, value?: string, inline?: boolean) =>
    tokens.push({ kind: "option", name, rawName, index, value, inlineValue: inline });
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (grouped > 0) grouped--;
    else index++;
    if (arg === "--") {
      tokens.push({ kind: "option-terminator", index });
      for (const value of rest) tokens.push({ kind: "positional", index: ++index, value });
      break;
    }
    const short = arg.length >= 2 && arg[0] === "-" && arg[1] !== "-";
    if (short && arg.length === 2) {
      const name = longName(arg[1], options);
      const value = takesValue(name) && rest.length > 0 ? rest.shift() : undefined;
      option(name, arg, value, value === undefined ? undefined : false);
      if (value !== undefined) index++;
    } else if (short && !takesValue(longName(arg[1], options))) {
      // A group (-qv): each letter an option; one that takes a value takes the rest (-qd5s).
      const expanded: string[] = [];
      for (let i = 1; i < arg.length; i++) {
        const last = i === arg.length - 1;
        if (!takesValue(longName(arg[i], options)) || last) expanded.push(`-${arg[i]}`);
        else {
          expanded.push(`-${arg.slice(i)}`);
          break;
        }
      }
      rest.unshift(...expanded);
      grouped = expanded.length;
    } else if (short) {
      option(longName(arg[1], options), `-${arg[1]}`, arg.slice(2), true);
    } else if (arg.length > 2 && arg.startsWith("--")) {
      const eq = arg.indexOf("=", 3);
      if (eq < 0) {
        const name = arg.slice(2);
        const value = takesValue(name) && rest.length > 0 ? rest.shift() : undefined;
        option(name, arg, value, value === undefined ? undefined : false);
        if (value !== undefined) index++;
      } else {
        const name = arg.slice(2, eq);
        option(name, `--${name}`, arg.slice(eq + 1), true);
      }
    } else tokens.push({ kind: "positional", index, value: arg });
  }
  return tokens;
}

/**
 * The options and positionals of `args`, as parseArgs gives them with `allowPositionals` and
 * `strict`: an unknown option, a missing or unexpected value, or a value that looks like an
 * option is an {@link ArgsError}.
 */
export function parseArgs<O extends Record<string, OptionSpec>>(
  args: string[],
  options: O,
): { values: Values<O>; positionals: string[] } {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (const token of argTokens(args, options)) {
    if (token.kind === "positional") positionals.push(token.value);
    if (token.kind !== "option") continue;
    const spec = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (!spec) {
      throw new ArgsError(
        `Unknown option '${token.rawName}'. To specify a positional argument starting with a ` +
          `'-', place it at the end of the command after '--', as in '-- ${
            JSON.stringify(token.rawName)
          }`,
      );
    }
    const both = `${spec.short ? `-${spec.short}, ` : ""}--${token.name}`;
    if (spec.type === "string" && token.value === undefined) {
      throw new ArgsError(`Option '${both} <value>' argument missing`);
    }
    if (spec.type === "boolean" && token.value !== undefined) {
      throw new ArgsError(`Option '${both}' does not take an argument`);
    }
    if (!token.inlineValue && token.value !== undefined && /^-./s.test(token.value)) {
      const example = token.rawName.startsWith("--")
        ? `'${token.rawName}=-XYZ'`
        : `'--${token.name}=-XYZ' or '${token.rawName}-XYZ'`;
      throw new ArgsError(
        `Option '${token.rawName}' argument is ambiguous.\nDid you forget to specify the option ` +
          `argument for '${token.rawName}'?\nTo specify an option argument starting with a dash ` +
          `use ${example}.`,
      );
    }
    values[token.name] = token.value ?? true;
  }
  for (const [name, spec] of Object.entries(options)) {
    if (values[name] === undefined && spec.default !== undefined) values[name] = spec.default;
  }
  return { values: values as Values<O>, positionals };
}
