import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { EXPLAIN_ENV } from "../../cli/recipe_child.ts";
import { probe } from "../fixtures/subprocess.ts";

/** The rows of syscount's `--per-process` table: PID COMM SYSCALL COUNT. */
function rows(stdout: string): Array<{ pid: number; comm: string; name: string; count: number }> {
  return stdout.split("\n").flatMap((line) => {
    const m = /^\s*(\d+) (\S+)\s+(\w+)\s+(\d+)$/.exec(line);
    return m ? [{ pid: Number(m[1]), comm: m[2], name: m[3], count: Number(m[4]) }] : [];
  });
}

/** Runs `body` with a recipe file that writes its arguments and --explain's variable to `seen`. */
async function withEchoRecipe(body: (recipe: string, seen: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const seen = `${dir}/seen.json`;
  await Deno.writeTextFile(
    `${dir}/echo.ts`,
    `Deno.writeTextFileSync(${JSON.stringify(seen)}, ` +
      `JSON.stringify({ args: Deno.args, explain: Deno.env.get("${EXPLAIN_ENV}") ?? null }));\n`,
  );
  try {
    await body(`${dir}/echo.ts`, seen);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("probe run FILE passes everything after the file to the recipe, options of probe's names included", async () => {
  await withEchoRecipe(async (recipe, seen) => {
    const cases: Array<[string[], string[]]> = [
      [["-a", "-d", "1s"], ["-a", "-d", "1s"]],
      // `--` right after the file is dropped, as before; a later one is the recipe's.
      [["--", "-d", "1s"], ["-d", "1s"]],
      [["-a", "--", "-b"], ["-a", "--", "-b"]],
      [["--", "--", "x"], ["--", "x"]],
      [[], []],
      // Options that are probe's before the file are the recipe's after it.
      [
        ["--explain", "--trust", "--integrity", "sha256-x", "-e", "x", "-l", "--help", "-V"],
        ["--explain", "--trust", "--integrity", "sha256-x", "-e", "x", "-l", "--help", "-V"],
      ],
      [["run", "pin", "-o", "/dev/full", "--format", "xml"], [
        "run",
        "pin",
        "-o",
        "/dev/full",
        "--format",
        "xml",
      ]],
    ];
    for (const [after, args] of cases) {
      await Deno.remove(seen).catch(() => {});
      const r = await probe(["run", recipe, ...after]);
      equal(r.code, 0, `${after.join(" ")}: ${r.stderr}`);
      equal(JSON.parse(await Deno.readTextFile(seen)), { args, explain: null }, after.join(" "));
    }
    // probe's own --explain goes before the file.
    const r = await probe(["run", "--explain", recipe, "--explain"]);
    equal(r.code, 0, r.stderr);
    equal(JSON.parse(await Deno.readTextFile(seen)), { args: ["--explain"], explain: "1" });
  });
});

Deno.test("probe's options before run's target that run does not take are a usage error", async () => {
  await withEchoRecipe(async (recipe, seen) => {
    const befores = [["-d", "1s"], ["-p", "1"], ["--format", "json"], ["-q"], ["-a"], ["--bogus"]];
    for (const before of befores) {
      const r = await probe([...before, "run", recipe]);
      equal(r.code, 2, `${before.join(" ")}: ${r.stderr}`);
      equal(
        r.stderr,
        `probe: ${before[0]} is not an option of run (--explain, --trust and --integrity are): ` +
          `give the recipe's options after its FILE|URL (see --help)\n`,
      );
      await Deno.stat(seen).then(() => ok(false, "the recipe ran"), () => {});
    }
  });
});

Deno.test("probe run scripts/syscount.ts -a -d 1s: the recipe's options without --, and with it", async () => {
  // A process that is not probe's child: only -a reaches it.
  const perl = new Deno.Command("perl", {
    // Long enough for two runs in the emulated 6.1 VM, where each Deno start takes seconds.
    args: ["-e", `$0 = "tsp_runargs"; my $end = time + 120; getppid() while time < $end`],
  }).spawn();
  try {
    for (const args of [["-a", "-d", "1s"], ["--", "-a", "-d", "1s"]]) {
      const started = performance.now();
      const r = await probe([
        "run",
        "scripts/syscount.ts",
        ...args,
        "--per-process",
        "--top",
        "100000",
      ]);
      const elapsed = performance.now() - started;
      equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      const mine = rows(r.stdout).find((row) => row.pid === perl.pid && row.name === "getppid");
      ok(
        mine && mine.comm === "tsp_runargs" && mine.count > 1000,
        `${args.join(" ")}: ${r.stdout}`,
      );
      // -d 1s reached the recipe: it stopped by itself, well before perl's end.
      ok(elapsed >= 1000 && elapsed < 60_000, `${args.join(" ")}: ${elapsed} ms`);
    }
  } finally {
    try {
      perl.kill();
    } catch { /* it ended by itself */ }
    await perl.status;
  }
});

Deno.test("probe run scripts/syscount.ts -c CMD counts exactly the command's syscalls", async () => {
  const n = 321;
  const r = await probe([
    "run",
    "scripts/syscount.ts",
    "-c",
    `perl -e '$0 = "tsp_runargs_c"; getppid() for 1..${n}'`,
    "--per-process",
    "--top",
    "100000",
  ]);
  equal(r.code, 0, r.stderr);
  equal(
    rows(r.stdout).filter((row) => row.comm === "tsp_runargs_c" && row.name === "getppid")
      .map((row) => row.count),
    [n],
    r.stdout,
  );
});
