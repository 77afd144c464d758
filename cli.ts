/**
 * The `probe` command: one-liners, probe listings and recipes.
 *
 *   probe -e 'syscall.on("read:return").hist((e) => e.ret)'    run a one-liner
 *   probe -l 'io:*' -v                                         list probes with their arguments
 *   probe run scripts/biolatency.ts -d 5s                      run a recipe file
 *   probe run --integrity sha256-... https://host/recipe.ts    run a pinned remote recipe
 *   probe types 'block:*' openat                               this kernel's types, for scripts
 *
 * Exit codes: 0 done, 1 runtime failure (or a missing precondition), 2 usage error.
 *
 * @module
 */
import { VERSION } from "./runtime/version.ts";
import { attachedBanner } from "./runtime/run_options.ts";
import { argTokens, parseArgs, PROBE_OPTIONS as OPTIONS } from "./cli/args.ts";
// Not mod.ts, which loads every provider: a one-liner loads those it names (cli/oneliner.ts),
// and what only -l, run URL, pin or types need is imported when they run.
import { explain, run } from "./runtime/dsl/global.ts";
import type { RunSummary } from "./runtime/session.ts";
import { formatAggregation, intervalHeader } from "./runtime/aggregate/print.ts";
import { foldedText, foldStacks } from "./runtime/aggregate/folded.ts";
import { pathExists, writeAllSync } from "./system/files.ts";
import { isUsageError } from "./runtime/usage.ts";
import { printableJson } from "./runtime/printable.ts";
import { RecordWriter } from "./runtime/records.ts";
import { missingPreconditions } from "./cli/preconditions.ts";
import { MAX_NESTING, nestingDepth, oneLinerUrl } from "./cli/oneliner.ts";
import { programProblem } from "./runtime/command.ts";
import { EXPLAIN_ENV, PARENT_ENV } from "./cli/recipe_child.ts";

/** probe's help, naming the file `probe types` writes by default. */
const usage = (typesFile: string) =>
  `usage:
  probe -e CODE [options]        run a one-liner; every provider (syscall, tracepoint, io, aio,
                                 span, exit, B) is in scope; aggregations print at exit
  probe -l [PATTERN] [-v]        list probes (with argument names and types when -v)
  probe run [--explain] [--trust | --integrity sha256-B64] FILE|URL [RECIPE ARGS...]
                                 run a recipe; a URL runs only when its whole module graph
                                 is pinned (or trusted); unpinned, nothing of it runs.
                                 run's options go before FILE|URL: all that follows it is
                                 the recipe's, even what looks like probe's (a -- right
                                 after it is dropped)
  probe pin URL                  print the integrity value that pins a recipe URL
  probe types [PATTERN...] [-o FILE] [--module SPEC]
                                 write this kernel's tracepoint and syscall types (all, or
                                 those PATTERNs match) to FILE (${typesFile}); a
                                 script type-checks against them once it has
                                 import type {} from "./${typesFile}";
                                 SPEC: how scripts import tsprobe (default: this mod.ts)
options:
  -p, --pid PID                  trace this process
  -c, --command CMD              run CMD (through sh), trace it and its children
  -d, --duration D               stop after D (500ms, 10s, 2m)
  -i, --interval I               print the aggregations every I
  -o, --output FILE              write the output to FILE
  --format text|json|ndjson|folded  output format (default text; folded: stack-keyed counts,
                                    one line each, for flame graph tools)
  --explain                      print what would be compiled and loaded, then exit
  -q, --quiet                    no "tracing ..." line on stderr once attached
  --metrics HOST:PORT            serve the aggregations as Prometheus metrics (/metrics)
                                 until stopped (recipes take --metrics too)
  -V, --version                  print the version
  -h, --help                     this text
exit codes: 0 done, 1 runtime failure, 2 usage error`;

class Usage extends Error {}

/** A bpftrace program: `provider:...` or `BEGIN`/`END` then a `{` block, or a `@map`. */
const BPFTRACE_SYNTAX = /^\s*(?:[a-z]+:[^\s{]*\s*(?:\/[^/]*\/\s*)?\{|(?:BEGIN|END)\s*\{|@)/;

/** What Deno runs as a module. */
const RECIPE_FILE = /\.(ts|mts|tsx|js|mjs|jsx)$/;

/** What `probe run` takes before its target (--help and --version print and end). */
const RUN_OPTIONS = new Set(["explain", "trust", "integrity", "help", "version"]);

/**
 * probe's arguments, and after `run FILE|URL` the recipe's (`recipeArgs`), as given: nothing
 * after the target is probe's, so a recipe's arguments cannot change how probe runs it
 * (--trust, --integrity). A `--` right after the target is dropped, as it used to be needed.
 */
function options() {
  // Where the target is, by the same reading of options as the strict parse below.
  const tokens = argTokens(Deno.args, OPTIONS);
  const [command, target] = tokens.filter((t) => t.kind === "positional");
  const before = tokens.filter((t) => target !== undefined && t.index < target.index);
  // With -l, "run" is a pattern.
  const run = command?.value === "run" && target !== undefined &&
    !before.some((t) => t.kind === "option" && t.name === "list");
  // Not ignored: what was meant for the recipe is said to go after it.
  const wrong = run && before.find((t) => t.kind === "option" && !RUN_OPTIONS.has(t.name));
  if (wrong && wrong.kind === "option") {
    throw new Usage(
      `${wrong.rawName} is not an option of run (--explain, --trust and --integrity are): ` +
        "give the recipe's options after its FILE|URL",
    );
  }
  const end = run ? target.index + 1 : Deno.args.length;
  const after = Deno.args.slice(end);
  try {
    const parsed = parseArgs(Deno.args.slice(0, end), OPTIONS);
    return { ...parsed, recipeArgs: after[0] === "--" ? after.slice(1) : after };
  } catch (e) {
    throw new Usage((e as Error).message.split("\n")[0]);
  }
}

/**
 * Fails with a usage error when `path` cannot be opened for writing. It is left as it was: a
 * file created to try is removed, so a usage error found later leaves nothing behind.
 */
function checkWritable(path: string): void {
  try {
    try {
      Deno.openSync(path, { write: true, createNew: true }).close();
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      Deno.openSync(path, { write: true }).close();
    }
  } catch (e) {
    throw new Usage(`-o '${path}' cannot be written: ${(e as Error).message.split("\n")[0]}`);
  }
}

/**
 * Where output goes: stdout or the -o file, which is replaced at the first write, so that a
 * usage error found once the one-liner is planned leaves an existing file as it was.
 */
function writer(path: string | undefined): Writer {
  // Not console.log, which a one-liner's handlers share (and which JSON output moves).
  if (!path) {
    return Object.assign((text: string) => writeAllSync(Deno.stdout, text + "\n"), {
      finish() {},
    });
  }
  let append = false;
  const write = (text: string) => {
    Deno.writeTextFileSync(path, text, { append });
    append = true;
  };
  // A run that printed nothing still replaces the file, with an empty one.
  return Object.assign((text: string) => write(text + "\n"), { finish: () => append || write("") });
}

/** Writes a line of output; `finish()` once done. */
type Writer = ((text: string) => void) & { finish(): void };

/** Prints the aggregations of an interval or of the whole run, as text or folded stacks. */
function printAggregations(
  aggregations: RunSummary["aggregations"],
  format: string,
  out: (text: string) => void,
): void {
  for (const a of aggregations) {
    // Stack-keyed counts as flame graph tools read them; other parts of a key lead its line.
    out(format === "folded" ? foldedText(foldStacks(a)) : formatAggregation(a) + "\n");
  }
}

async function oneLiner(o: ReturnType<typeof options>["values"]): Promise<void> {
  // Number("") is 0 and Number(" 7") is 7: only digits are a pid (its range: checkTargets).
  if (o.pid !== undefined && !/^\d+$/.test(o.pid)) {
    throw new Usage(`--pid '${o.pid}' is not a process id (an integer from 1 to 4194304)`);
  }
  const pid = o.pid === undefined ? undefined : Number(o.pid);
  // Deno's own parser overflows its stack (and aborts) on brackets about 1000 deep.
  if (nestingDepth(o.eval!) > MAX_NESTING) {
    throw new Usage(`the one-liner nests brackets more than ${MAX_NESTING} deep`);
  }
  try {
    await import(oneLinerUrl(o.eval!));
  } catch (e) {
    // Its own mistakes: syntax, a name not in scope, a call of what is not a function.
    if (e instanceof SyntaxError || e instanceof ReferenceError || e instanceof TypeError) {
      // bpftrace's `probe { action }` form is not TypeScript: say what is.
      const syntax = (e as Error).message.startsWith("SyntaxError") || e instanceof SyntaxError;
      const hint = syntax && BPFTRACE_SYNTAX.test(o.eval!)
        ? "; -e takes TypeScript, not bpftrace's language: e.g. " +
          "probe -e 'syscall.on(\"read:entry\").count((e) => e.comm)'"
        : "";
      throw new Usage(`the one-liner does not run: ${e.message.split("\n")[0]}${hint}`);
    }
    throw e;
  }
  if (o.explain) {
    writer(o.output)(await explain());
    return;
  }
  const out = writer(o.output);
  const records = o.format === "json" || o.format === "ndjson"
    ? new RecordWriter("probe", o.format, out)
    : undefined;
  // Records alone on stdout: what handlers print goes to stderr.
  if (records) console.log = console.error;
  const command = o.command === undefined ? undefined : ["sh", "-c", o.command];
  const summary = await run({
    pid,
    command,
    duration: o.duration,
    interval: o.interval,
    metrics: o.metrics,
    onAttached: (attached) => {
      records?.started();
      if (!o.quiet) {
        console.error(attachedBanner("probe", attached, { pid, command, duration: o.duration }));
      }
    },
    onInterval: o.interval === undefined ? undefined : (data) => {
      if (records) {
        records.interval = (records.interval ?? 0) + 1;
        for (const a of data) records.aggregation(a);
        return;
      }
      if (o.format === "text") out(intervalHeader());
      printAggregations(data, o.format!, out);
    },
    printAggregations: false,
  });
  if (records) {
    records.interval = null;
    for (const a of summary.aggregations) records.aggregation(a);
    records.end(summary);
    records.finish();
  } else printAggregations(summary.aggregations, o.format!, out);
  out.finish();
  if (summary.commandExitCode) {
    console.error(`probe: the command exited with status ${summary.commandExitCode}`);
  }
}

async function runRecipe(
  o: ReturnType<typeof options>["values"],
  target: string | undefined,
  rest: string[],
): Promise<number> {
  if (!target) throw new Usage("run needs a recipe FILE or URL");
  const env: Record<string, string> = o.explain ? { [EXPLAIN_ENV]: "1" } : {};
  if (!isUrl(target)) {
    if (!pathExists(target)) throw new Usage(`no recipe file '${target}'`);
    if (!RECIPE_FILE.test(target) || !Deno.statSync(target).isFile) {
      throw new Usage(`'${target}' is not a recipe file (a .ts or .js module)`);
    }
    return await runDeno(["run", "-A", target, ...rest], env);
  }
  const { integrityDigest, integrityMatches, lockedRunArgs, lockGraph } = await import(
    "./cli/remote.ts"
  );
  if (o.integrity !== undefined && integrityDigest(o.integrity) === undefined) {
    throw new Usage(`--integrity '${o.integrity}' is not sha256-<base64> (or sha256-<hex>)`);
  }
  const graph = await lockGraph(target);
  if (o.integrity !== undefined && !integrityMatches(o.integrity, graph.integrity)) {
    throw new Usage(
      `${target} does not match --integrity ${o.integrity}: it or a module it imports ` +
        `changed (its graph is now ${graph.integrity}); not run`,
    );
  }
  if (o.integrity === undefined && !o.trust) {
    // Nothing of it runs: what it would load, and how to pin it.
    for (const [module, hash] of graph.modules) console.log(`${hash}  ${module}`);
    console.error(
      `probe: not run: ${target} is not pinned (its ${graph.modules.length} modules are ` +
        `listed above); to run it: probe run --integrity ${graph.integrity} ${target}`,
    );
    return 2;
  }
  // The lockfile has no name while the recipe runs: a killed probe leaves nothing behind.
  const { unlinkedFile } = await import("./cli/unlinked_file.ts");
  const lock = await unlinkedFile(graph.lock);
  try {
    return await runDeno([...lockedRunArgs(target, lock.path), ...rest], env);
  } finally {
    lock.close();
  }
}

/** `probe pin URL`: the integrity value that pins a remote recipe and everything it imports. */
async function pinRecipe(args: string[]): Promise<number> {
  if (args.length !== 1 || !isUrl(args[0])) throw new Usage("pin needs one recipe URL");
  const { lockGraph } = await import("./cli/remote.ts");
  console.log((await lockGraph(args[0])).integrity);
  return 0;
}

function isUrl(target: string): boolean {
  return /^https?:\/\//.test(target);
}

/** The module `probe run` preloads into every recipe (see cli/recipe_host.ts). */
const RECIPE_HOST = new URL("./cli/recipe_host.ts", import.meta.url).href;

async function runDeno(args: string[], env: Record<string, string>): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    // ["run", ...]: the host module first.
    args: [args[0], `--preload=${RECIPE_HOST}`, ...args.slice(1)],
    // The recipe ends with probe, even when probe is killed (see followParent).
    env: { ...env, [PARENT_ENV]: String(Deno.pid) },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

async function main(): Promise<number> {
  const { values: o, positionals, recipeArgs } = options();
  if (o.version) {
    console.log(`probe (tsprobe) ${VERSION}, Deno ${Deno.version.deno}`);
    return 0;
  }
  if (o.help || Deno.args.length === 0) {
    console.log(usage((await import("./cli/types.ts")).DEFAULT_TYPES_FILE));
    return 0;
  }
  if (!["text", "json", "ndjson", "folded"].includes(o.format!)) {
    throw new Usage(`--format '${o.format}' is not one of text, json, ndjson, folded`);
  }
  const asked = [
    o.eval !== undefined && "-e",
    o.list && "-l",
    !o.list && positionals.length > 0 && positionals[0],
  ].filter((x) => x);
  if (asked.length > 1) {
    throw new Usage(`give one of -e, -l, run, pin or types, not ${asked.join(" and ")}`);
  }
  if (o.output !== undefined) checkWritable(o.output);
  if (o.command !== undefined) {
    const problem = await programProblem(o.command);
    if (problem) throw new Usage(`-c '${o.command}': ${problem}`);
  }
  if (o.list) {
    if (positionals.length > 1) throw new Usage("-l takes at most one PATTERN (quote it)");
    const { formatListing, listProbes } = await import("./runtime/listing.ts");
    const probes = listProbes(positionals[0]);
    if (probes.length === 0) throw new Usage(`no probe matches '${positionals[0]}'`);
    writer(o.output)(
      o.format === "text" ? formatListing(probes, !!o.verbose) : printableJson(probes),
    );
    return 0;
  }
  // Pinning runs nothing of the recipe and needs no privilege.
  if (positionals[0] === "pin") return await pinRecipe(positionals.slice(1));
  if (positionals[0] === "types") {
    const { writeKernelTypes } = await import("./cli/types.ts");
    console.error(`probe: wrote ${writeKernelTypes(positionals.slice(1), o)}`);
    return 0;
  }
  const missing = missingPreconditions();
  if (missing.length && !o.explain) {
    for (const m of missing) console.error(`probe: ${m.what}: ${m.remedy}`);
    return 1;
  }
  if (positionals[0] === "run") return await runRecipe(o, positionals[1], recipeArgs);
  if (o.eval !== undefined) {
    await oneLiner(o);
    return 0;
  }
  throw new Usage(
    positionals.length
      ? `unknown command '${positionals[0]}'`
      : "nothing to do: give -e, -l or run",
  );
}

try {
  Deno.exit(await main());
} catch (e) {
  const usage = e instanceof Usage || isUsageError(e);
  console.error(
    `probe: ${(e as Error).message.split("\n")[0]}${usage ? " (see --help)" : ""}`,
  );
  Deno.exit(usage ? 2 : 1);
}
