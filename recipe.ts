/**
 * Recipes: one TypeScript file that declares its name, description and typed options once and
 * gets `--help`, option validation (one-line errors, exit code 2) and the common tracing
 * options (`-p`, `-c`, `-d`, `-i`, `--demo`, `--format`, `-o`, `[interval [count]]`,
 * `--metrics`) for free. This entry point also holds what recipes print with:
 * {@link summarize} and {@link micros} for latency histograms.
 *
 * @example A recipe counting system calls by command
 * ```ts ignore
 * // ignore: recipe() reads Deno.args, runs the probes (which needs root) and exits.
 * import { recipe } from "./recipe.ts";
 * import { printable, tracepoint } from "./mod.ts";
 * await recipe({
 *   name: "commcount",
 *   description: "System calls by command",
 *   options: { top: { type: "number", default: 10, help: "how many to show" } },
 *   setup(o) {
 *     const counts = tracepoint("raw_syscalls:sys_enter").count((e) => e.comm);
 *     return () => {
 *       const rows = counts.read()?.rows ?? [];
 *       for (const r of rows.slice(0, o.top)) console.log(printable(String(r.key[0])));
 *     };
 *   },
 * });
 * ```
 *
 * @module
 */
import { attachedBanner } from "./runtime/run_options.ts";
import { VERSION } from "./runtime/version.ts";
import { parseArgs } from "node:util";
import { run, type RunOptions, type RunSummary } from "./mod.ts";
import { isUsageError } from "./runtime/usage.ts";
import { programProblem } from "./runtime/command.ts";
import { DurationError, parseDuration } from "./runtime/duration.ts";
import { RecordWriter } from "./runtime/records.ts";
import { writeAllSync } from "./system/files.ts";

// What latency recipes print under a histogram: part of this entry point, so recipes need no
// runtime/ module.
export {
  type HistogramSummary,
  micros,
  summarize,
  summaryLine,
} from "./runtime/aggregate/summary.ts";

/** One option a recipe declares. */
export type OptionSpec =
  | {
    type: "number";
    short?: string;
    help: string;
    default?: number;
    min?: number;
    /** Whole numbers only. */
    integer?: boolean;
  }
  | { type: "string"; short?: string; help: string; default?: string; choices?: readonly string[] }
  | { type: "boolean"; short?: string; help: string };

/** The parsed value of each declared option. */
export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends { type: "number"; default: number } ? number
    : O[K] extends { type: "number" } ? number | undefined
    : O[K] extends { type: "string"; default: string } ? string
    : O[K] extends { type: "string" } ? string | undefined
    : boolean;
};

/** What every recipe gets besides its own options. */
export interface CommonOptions {
  /** -p PID: trace this process. */
  pid?: number;
  /** -c CMD: run CMD through sh and trace it and its children. */
  command?: string;
  /** -d DURATION. */
  duration?: string;
  /** -i INTERVAL: print each interval. */
  interval?: string;
  /** --json or --format json|ndjson: machine-readable output, through {@link records}. */
  json: boolean;
  /**
   * With `json`: where the recipe writes its output, as records of the one schema of
   * `probe` and every recipe (README, "Output"); undefined for text.
   */
  records?: RecordWriter;
  /** -a: every process (the default without -p, -c or --demo; kept for BCC's habit). */
  all: boolean;
  /** --demo: trace the recipe's built-in workload. */
  demo: boolean;
  /** -q: no "tracing ..." line on stderr once attached. */
  quiet: boolean;
  /** --format: text, json or ndjson (json and ndjson set `json`). */
  format?: string;
  /** -o FILE: the output goes there. */
  output?: string;
  /** --metrics HOST:PORT: serve the aggregations as Prometheus metrics there. */
  metrics?: string;
}

/** A recipe's declaration. */
export interface Recipe<O extends Record<string, OptionSpec>> {
  /** The name in --help and at the start of each error line ("biolatency"). */
  name: string;
  /** One line for --help. */
  description: string;
  /** Extra lines for --help (examples). */
  examples?: string[];
  /** The recipe's own options, by long name. */
  options?: O;
  /** The built-in workload `--demo` runs and traces: a shell command, or argv to run as is. */
  demo?: string | string[];
  /** Adds the probes; may return a function called with the summary after the run. */
  setup(
    options: OptionValues<O> & CommonOptions,
  ): void | ((summary: RunSummary) => void) | Promise<void | ((summary: RunSummary) => void)>;
  /** Run options beyond the common ones (e.g. onInterval). */
  run?: (options: OptionValues<O> & CommonOptions) => RunOptions;
}

/** Thrown for bad command lines; `recipe()` prints it as one line and exits 2. */
export class UsageError extends Error {
  /** `message` is the one line printed after the recipe's name. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const COMMON: Record<string, OptionSpec> = {
  pid: { type: "number", short: "p", help: "trace this process", min: 1, integer: true },
  command: { type: "string", short: "c", help: "run CMD (through sh) and trace it" },
  all: { type: "boolean", short: "a", help: "trace every process (the default)" },
  demo: { type: "boolean", help: "run the built-in demo workload and trace it" },
  duration: { type: "string", short: "d", help: "stop after D (500ms, 10s, 2m)" },
  interval: { type: "string", short: "i", help: "print each interval I" },
  json: { type: "boolean", help: "print JSON (the same as --format json)" },
  format: {
    type: "string",
    choices: ["text", "json", "ndjson"],
    help: "text (default), json (one array of records) or ndjson (a record per line)",
  },
  output: { type: "string", short: "o", help: "write the output to FILE instead of stdout" },
  quiet: { type: "boolean", short: "q", help: 'no "tracing ..." line on stderr once attached' },
  metrics: {
    type: "string",
    help: "serve the aggregations as Prometheus metrics at HOST:PORT (/metrics)",
  },
  version: { type: "boolean", short: "V", help: "print the version" },
  help: { type: "boolean", short: "h", help: "this text" },
};

/** The --help text of a recipe. */
export function helpText<O extends Record<string, OptionSpec>>(r: Recipe<O>): string {
  const specs = { ...COMMON, ...(r.options ?? {}) };
  const lines = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : "    "}--${name}${
      s.type === "boolean" ? "" : ` ${name.toUpperCase()}`
    }`;
    const extra = "choices" in s && s.choices ? ` (${s.choices.join(", ")})` : "";
    const def = "default" in s && s.default !== undefined ? ` [default: ${s.default}]` : "";
    return `  ${flag.padEnd(26)} ${s.help}${extra}${def}`;
  });
  return [
    `usage: ${r.name} [options] [interval [count]]`,
    r.description,
    "Without -p, -c or --demo it traces every process but its own, until Ctrl-C or -d.",
    "",
    ...lines,
    ...(r.examples?.length ? ["", "examples:", ...r.examples.map((e) => `  ${e}`)] : []),
  ].filter((l, i) => l !== "" || i > 1).join("\n");
}

/**
 * Parses `args` against the recipe's options and the common ones; throws {@link UsageError}.
 *
 * @example Options with their defaults
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { parseOptions, UsageError } from "./recipe.ts";
 * const r = {
 *   name: "demo",
 *   description: "A demonstration",
 *   options: { top: { type: "number", default: 10, help: "rows", integer: true } },
 *   setup() {},
 * } as const;
 * equal(parseOptions(r, ["-p", "42"]).top, 10);
 * equal(parseOptions(r, ["--top", "3"]).top, 3);
 * throws(() => parseOptions(r, ["--top", "x"]), UsageError);
 * ```
 */
export function parseOptions<O extends Record<string, OptionSpec>>(
  r: Recipe<O>,
  args: string[],
): OptionValues<O> & CommonOptions & { help?: boolean; version?: boolean } {
  const specs = { ...COMMON, ...(r.options ?? {}) };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: Object.fromEntries(
        Object.entries(specs).map(([name, s]) => [
          name,
          { type: s.type === "boolean" ? "boolean" : "string", ...(s.short && { short: s.short }) },
        ]),
      ) as NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (s.type === "boolean") out[name] = raw === true;
    else if (raw === undefined) out[name] = "default" in s ? s.default : undefined;
    else if (s.type === "number") {
      const n = Number(raw);
      if (
        !Number.isFinite(n) || (s.integer && !Number.isInteger(n)) ||
        (s.min !== undefined && n < s.min)
      ) {
        throw new UsageError(
          `--${name} '${raw}' is not ${s.integer ? "an integer" : "a number"}` +
            `${s.min !== undefined ? ` >= ${s.min}` : ""}`,
        );
      }
      out[name] = n;
    } else {
      if (s.choices && !s.choices.includes(raw as string)) {
        throw new UsageError(`--${name} '${raw}' is not one of ${s.choices.join(", ")}`);
      }
      out[name] = raw;
    }
  }
  if (out.json && out.format === undefined) out.format = "json";
  if (out.json && out.format === "text") throw new UsageError("give --json or --format text");
  out.json = out.format === "json" || out.format === "ndjson";
  // BCC's positional [interval [count]]: seconds between prints, and how many.
  const [every, count, ...extra] = parsed.positionals;
  if (extra.length) throw new UsageError(`unexpected '${extra[0]}': at most [interval [count]]`);
  if (every !== undefined) {
    const seconds = Number(every);
    if (!(seconds > 0)) {
      throw new UsageError(`interval '${every}' is not a positive number of seconds`);
    }
    if (out.interval !== undefined) {
      throw new UsageError("give the interval once: -i or positional");
    }
    out.interval = `${seconds}s`;
    if (count !== undefined) {
      const n = Number(count);
      if (!Number.isInteger(n) || n < 1) {
        throw new UsageError(`count '${count}' is not a positive integer`);
      }
      if (out.duration !== undefined) throw new UsageError("give -d or a count, not both");
      out.duration = `${seconds * n}s`;
    }
  }
  const targets = ["pid", "command", "all", "demo"].filter((k) =>
    out[k] !== undefined && out[k] !== false
  );
  if (targets.length > 1) {
    throw new UsageError("give at most one of --pid, --command, --all, --demo");
  }
  if (out.demo && !r.demo) throw new UsageError(`${r.name} has no demo workload`);
  return out as OptionValues<O> & CommonOptions & { help?: boolean; version?: boolean };
}

/**
 * Runs a recipe from the command line (`Deno.args`): --help, validation, setup, the run,
 * then its report. Exit codes: 0 done, 1 runtime failure, 2 usage error.
 */
export async function recipe<O extends Record<string, OptionSpec>>(
  r: Recipe<O>,
  args: string[] = Deno.args,
): Promise<void> {
  let options;
  try {
    options = parseOptions(r, args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${r.name}: ${e.message} (see --help)`);
    Deno.exit(2);
  }
  if (options.help) {
    console.log(helpText(r));
    Deno.exit(0);
  }
  if (options.version) {
    console.log(`${r.name} (tsprobe) ${VERSION}, Deno ${Deno.version.deno}`);
    Deno.exit(0);
  }
  let write = (line: string) => writeAllSync(Deno.stdout, `${line}\n`);
  if (options.output !== undefined) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(options.output, { write: true, create: true, truncate: true });
    } catch (e) {
      const why = (e as Error).message.split("\n")[0];
      console.error(`${r.name}: -o '${options.output}' cannot be written: ${why} (see --help)`);
      Deno.exit(2);
    }
    write = (line) => writeAllSync(file, `${line}\n`);
  }
  if (options.json) {
    options.records = new RecordWriter(r.name, options.format as "json" | "ndjson", write);
    // Records alone on the output: whatever else the recipe prints is for the terminal.
    console.log = console.error;
  } else if (options.output !== undefined) {
    // What the recipe prints goes to the file: its report, not the banner or errors (stderr).
    console.log = (...parts: unknown[]) =>
      write(parts.map((p) => typeof p === "string" ? p : Deno.inspect(p)).join(" "));
  }
  try {
    // Checked before setup(), which may already print (the demo's notice).
    if (options.duration !== undefined) parseDuration(options.duration);
    if (options.interval !== undefined) parseDuration(options.interval, true);
  } catch (e) {
    if (!(e instanceof DurationError)) throw e;
    console.error(`${r.name}: ${e.message} (see --help)`);
    Deno.exit(2);
  }
  const problem = options.command === undefined ? undefined : await programProblem(options.command);
  if (problem) {
    console.error(`${r.name}: -c '${options.command}': ${problem} (see --help)`);
    Deno.exit(2);
  }
  try {
    const report = await r.setup(options);
    const command = options.command !== undefined
      ? ["sh", "-c", options.command]
      : options.demo
      ? typeof r.demo === "string" ? ["sh", "-c", r.demo] : r.demo
      : undefined;
    const extra = r.run?.(options);
    const records = options.records;
    const summary = await run({
      pid: options.pid,
      command,
      duration: options.duration,
      interval: options.interval,
      metrics: options.metrics,
      printAggregations: false,
      ...extra,
      onAttached: (attached) => {
        records?.started();
        if (!options.quiet) {
          console.error(attachedBanner(r.name, attached, { ...options, command }));
        }
        extra?.onAttached?.(attached);
      },
      onInterval: extra?.onInterval && ((data) => {
        if (records) records.interval = (records.interval ?? 0) + 1;
        extra.onInterval!(data);
      }),
    });
    // With an interval, recipes empty their aggregations each time: what is left at the end
    // is the last interval's (`syscount 1 2` prints the second here).
    if (records) records.interval = options.interval ? (records.interval ?? 0) + 1 : null;
    if (report) report(summary);
    records?.end(summary);
    records?.finish();
  } catch (e) {
    const usage = e instanceof UsageError || isUsageError(e);
    // The same line as probe's: usage errors point to --help.
    console.error(
      `${r.name}: ${e instanceof Error ? e.message : e}${usage ? " (see --help)" : ""}`,
    );
    Deno.exit(usage ? 2 : 1);
  }
}
