/**
 * The options every recipe shares, in the same form: --help lists them, --format json and
 * ndjson write records valid against the documented schema, -o writes them to a file,
 * BCC's positional [interval [count]] works, and the recipe's own process is never in what
 * it reports.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, type Output, recipe } from "../fixtures/subprocess.ts";
import { parseRecords } from "../fixtures/records.ts";
import { pool } from "../fixtures/pool.ts";
import type { OutputRecord } from "../../mod.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Every recipe in scripts/. */
const RECIPES = [...Deno.readDirSync(`${ROOT}scripts`)]
  .filter((e) => e.name.endsWith(".ts"))
  .map((e) => e.name.replace(/\.ts$/, ""))
  .sort();

Deno.test("every recipe's --help lists the common options in one form", async () => {
  ok(RECIPES.length >= 17, RECIPES.join(" "));
  await pool(RECIPES, 4, async (name) => {
    const r = await recipe(name, "--help");
    equal(r.code, 0, `${name}: ${r.stderr}`);
    ok(r.stdout.startsWith(`usage: ${name} [options] [interval [count]]`), `${name}: ${r.stdout}`);
    for (
      const o of [
        "-p, --pid PID",
        "-c, --command COMMAND",
        "    --demo",
        "-a, --all",
        "-d, --duration DURATION",
        "-i, --interval INTERVAL",
        "    --format FORMAT",
        "-o, --output OUTPUT",
        "-q, --quiet",
        "    --metrics METRICS",
        "-V, --version",
        "-h, --help",
      ]
    ) {
      ok(r.stdout.includes(o), `${name} --help lacks ${o}`);
    }
  });
});

/** The values of every property named `pid` in the records, however deep. */
function pids(records: OutputRecord[]): Set<unknown> {
  const found = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "pid") found.add(x);
        walk(x);
      }
    }
  };
  walk(records);
  return found;
}

/** Runs recipe `name` with `args`, and its pid. */
async function spawn(name: string, args: string[]): Promise<Output & { pid: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}scripts/${name}.ts`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const r = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: r.code,
    stdout: text(r.stdout),
    stderr: text(r.stderr),
    elapsedMs: 0,
    pid: child.pid,
  };
}

Deno.test("every recipe: --demo --format json -o FILE writes valid records to FILE, nothing to stdout", async () => {
  await pool(RECIPES, 3, async (name) => {
    const out = await Deno.makeTempFile({ prefix: `tsprobe-${name}-` });
    try {
      const r = await recipe(name, "--demo", "-q", "--format", "json", "-o", out);
      equal(r.code, 0, `${name}: ${r.stderr}`);
      equal(r.stdout, "", name);
      const records = parseRecords(await Deno.readTextFile(out), "json");
      equal(records.at(-1)?.type, "end", name);
      equal(new Set(records.map((x) => x.source)), new Set([name]));
      ok(records.length >= 2, `${name} reported nothing but its end: ${JSON.stringify(records)}`);
    } finally {
      await Deno.remove(out);
    }
  });
});

Deno.test("every recipe: system-wide `1 1` is one interval of valid NDJSON without its own pid", async () => {
  await pool(RECIPES, 3, async (name) => {
    // Some work to trace that is not the recipe's: this test's own process.
    const busy = setInterval(() => Deno.readTextFileSync("/etc/hostname"), 10);
    const r = await spawn(name, ["1", "1", "-q", "--format", "ndjson"]).finally(() =>
      clearInterval(busy)
    );
    equal(r.code, 0, `${name}: ${r.stderr}`);
    const records = parseRecords(r.stdout, "ndjson");
    equal(records.at(-1)?.type, "end", name);
    ok(records.every((x) => x.interval === null || x.interval === 1), `${name}: ${r.stdout}`);
    ok(!pids(records).has(r.pid), `${name}'s own pid ${r.pid} is in its results: ${r.stdout}`);
  });
});

Deno.test("positional interval and count: 1 2 prints two intervals and stops", async () => {
  const r = await recipe("syscount", "1", "2", "--top", "1");
  equal(r.code, 0, r.stderr);
  equal(lines(r.stdout).filter((l) => /^\d\d:\d\d:\d\d$/.test(l)).length, 2, r.stdout);
  const json = await recipe("syscount", "1", "2", "--top", "1", "--format", "ndjson");
  const intervals = parseRecords(json.stdout, "ndjson").map((x) => x.interval);
  ok(intervals.includes(1) && intervals.includes(2), json.stdout);
  const bad = await recipe("syscount", "0");
  equal(bad.code, 2);
  ok(bad.stderr.includes("interval '0' is not a positive number of seconds"), bad.stderr);
});

Deno.test("every recipe's --version names it, tsprobe's version and Deno's", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  await pool(RECIPES, 4, async (name) => {
    const r = await recipe(name, "--version");
    equal(r.code, 0, `${name}: ${r.stderr}`);
    equal(r.stdout, `${name} (tsprobe) ${version}, Deno ${Deno.version.deno}\n`);
  });
});

Deno.test("--demo, -p, -c and -a exclude each other", async () => {
  const r = await recipe("syscount", "--demo", "-a");
  equal(r.code, 2);
  equal(
    r.stderr.trim(),
    "syscount: give at most one of --pid, --command, --all, --demo (see --help)",
  );
});
