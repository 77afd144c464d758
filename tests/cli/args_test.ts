/**
 * probe's own reading of its command line (cli/args.ts) against Node's util.parseArgs, which
 * it stands in for: the same tokens, values, positionals and error messages, on every command
 * line of up to three arguments from a vocabulary of options, values, groups and positionals.
 *
 * @module
 */
import { deepStrictEqual as equal } from "node:assert/strict";
import { parseArgs as nodeParseArgs } from "node:util";
import { argTokens, parseArgs, PROBE_OPTIONS } from "../../cli/args.ts";

/** Pieces of command lines: probe's options in every form, values, and what is not an option. */
const WORDS = [
  "-e",
  "--eval",
  "--eval=x",
  "-ex",
  "-e=x",
  "-l",
  "-lv",
  "-vl",
  "-lve",
  "-qd5s",
  "-qz",
  "-V",
  "--version",
  "--format",
  "--format=json",
  "--quiet=1",
  "--nope",
  "-z",
  "--",
  "-",
  "-1",
  "---x",
  "--=x",
  "json",
  "run",
  "r.ts",
  "",
];

/** Every sequence of up to `n` words. */
function* commandLines(n: number): Generator<string[]> {
  yield [];
  if (n === 0) return;
  for (const rest of commandLines(n - 1)) {
    if (rest.length !== n - 1) continue;
    for (const word of WORDS) yield [...rest, word];
  }
}

/** Every command line of up to `n` words, shortest first. */
function* upTo(n: number): Generator<string[]> {
  for (let k = 0; k <= n; k++) {
    for (const line of commandLines(k)) if (line.length === k) yield line;
  }
}

/** The strict parse's result or error message, as plain data. */
function strict(parse: () => { values: object; positionals: string[] }) {
  try {
    const { values, positionals } = parse();
    return { values: { ...values }, positionals };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

Deno.test("probe's command line reads as util.parseArgs reads it, tokens and errors alike", () => {
  let lines = 0;
  for (const args of upTo(3)) {
    lines++;
    const node = nodeParseArgs({
      args,
      options: PROBE_OPTIONS,
      allowPositionals: true,
      strict: false,
      tokens: true,
    });
    equal(argTokens(args, PROBE_OPTIONS), node.tokens, JSON.stringify(args));
    equal(
      strict(() => parseArgs(args, PROBE_OPTIONS)),
      strict(() => nodeParseArgs({ args, options: PROBE_OPTIONS, allowPositionals: true })),
      JSON.stringify(args),
    );
  }
  equal(lines, 1 + 27 + 27 ** 2 + 27 ** 3);
});
