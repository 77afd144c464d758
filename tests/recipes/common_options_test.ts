/**
 * The options every recipe shares, in the same form: --help lists them, --format json is
 * --json, -o writes the output to a file, and BCC's positional [interval [count]] works.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, recipe } from "../fixtures/subprocess.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** The recipes built on recipe.ts (aio_latency still has its own parser). */
const RECIPES = [...Deno.readDirSync(`${ROOT}scripts`)]
  .map((e) => e.name.replace(/\.ts$/, ""))
  .filter((n) => Deno.readTextFileSync(`${ROOT}scripts/${n}.ts`).includes("await recipe({"))
  .sort();

Deno.test("every recipe's --help lists the common options in one form", async () => {
  ok(RECIPES.length >= 15, RECIPES.join(" "));
  await Promise.all(RECIPES.map(async (name) => {
    const r = await recipe(name, "--help");
    equal(r.code, 0, `${name}: ${r.stderr}`);
    ok(r.stdout.startsWith(`usage: ${name} [options] [interval [count]]`), `${name}: ${r.stdout}`);
    for (
      const o of [
        "--pid",
        "--command",
        "--all",
        "--duration",
        "--interval",
        "--format",
        "--output",
        "--quiet",
      ]
    ) {
      ok(r.stdout.includes(o), `${name} --help lacks ${o}`);
    }
  }));
});

Deno.test("--format json -o FILE writes the JSON report to FILE; stdout stays empty", async () => {
  const out = await Deno.makeTempFile();
  try {
    const r = await recipe(
      "syscount",
      "--format",
      "json",
      "-o",
      out,
      "-c",
      "perl -e 'getppid() for 1..50'",
    );
    equal(r.code, 0, r.stderr);
    equal(r.stdout, "");
    const report = JSON.parse(await Deno.readTextFile(out));
    ok(
      report.syscalls.some((s: { name: string; count: number }) =>
        s.name === "getppid" && s.count >= 50
      ),
    );
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("positional interval and count: 1 2 prints two intervals and stops", async () => {
  const r = await recipe("syscount", "1", "2", "-a", "--top", "1");
  equal(r.code, 0, r.stderr);
  equal(lines(r.stdout).filter((l) => /^\[\d\d:\d\d:\d\d\]$/.test(l)).length, 2, r.stdout);
  const bad = await recipe("syscount", "0");
  equal(bad.code, 2);
  ok(bad.stderr.includes("interval '0' is not a positive number of seconds"), bad.stderr);
});
