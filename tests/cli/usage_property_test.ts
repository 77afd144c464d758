/**
 * Malformed input of every kind, generated from tables: options of `probe`, durations, pids,
 * sizes, lambdas and misspelled probes in `-e` one-liners, and recipe arguments. Each input
 * runs the real CLI (or recipe) as a subprocess, which must exit 2 with exactly one line on
 * stderr and no stack trace, and the kernel must hold no BPF program, map or link that one of
 * them left: objects that appeared while they ran and are neither gone nor held by a live
 * process (other tests may load their own meanwhile) fail the test.
 *
 * Needs root, libbpf and bpftool.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { denoRun, lines, type Output } from "../fixtures/subprocess.ts";
import { kernelIds, leftBehind } from "../fixtures/left_behind.ts";
import { pool } from "../fixtures/pool.ts";

/** One malformed input: the file run (cli.ts or a recipe) and its arguments. */
type Case = { file: string; args: string[] };

const COUNT = "syscall.on('getppid:entry').count()";
const oneLiner = (code: string, ...more: string[]): Case => ({
  file: "cli.ts",
  args: ["-e", code, "-d", "5s", ...more],
});

const BAD_DURATIONS = ["2", "2sec", "-1s", "1.5.5s", "", " ", "s", "1e3s", "NaN", "5 parsecs"];
const BAD_PIDS = ["0", "-1", "abc", "1.5", "4194305", "99999999999", "", "0x10", "1e3", " 7"];
const BAD_SIZES = ["0", "-1", "2 ** 32", "NaN", "1.5", "Infinity", "'8'", "2 ** 20 + 1"];
const NOT_FUNCTIONS = ["42", "'e.ret > 0'", "null", "{}", "[]", "true"];

/** Every way to put a size or count into the public API, `S` standing for the size. */
const SIZE_SITES = [
  "syscall.on('read:return').count(undefined, { size: S })",
  "syscall.on('read:return').hist((e) => e.ret, { size: S })",
  "syscall.on('read:return').sum((e) => e.ret, { top: S })",
  "syscall.on('read:return').lhist((e) => e.ret, { min: 0, max: 100, step: S })",
  "span(syscall.on('read:entry'), syscall.on('read:return'), { key: (e) => e.tid, size: S }).count()",
  "syscall.on('read:return', undefined, { buffers: { buf: S } }).count()",
];

/** Every place a function goes, `F` standing for it. */
const FUNCTION_SITES = [
  "syscall.on('read:return').where(F).count()",
  "syscall.on('read:return').on(F)",
  "syscall.on('read:return').hist(F)",
  "syscall.on('read:return').count(F)",
  "syscall.on('read:return').max((e) => e.ret, { by: F })",
  "syscall.on('read:return', F)",
  "span(syscall.on('read:entry'), syscall.on('read:return'), { key: F }).count()",
];

const BAD_LAMBDAS = [
  "(e) => e.pid++",
  "(e) => { for (;;) {} }",
  "(e) => foo(e)",
  "(e) => e.nope > 1",
  "(e) => new Date() > 0",
  "(e) => e.comm + 1",
  "(e) => `${e.pid}`",
  "async (e) => e.pid > 1",
  "(e) => /x/.test(e.comm)",
  "(e) => e.comm === 1n",
  "(e) => e?.pid > 1",
  "(e, p, q) => e.pid > 1",
  `(e) => ${"e.pid + (".repeat(64)}e.pid${")".repeat(64)} > 0`,
  `(e) => ${Array.from({ length: 800 }, (_, i) => `e.pid === ${i}`).join(" || ")}`,
  `(e) => ${
    Array.from({ length: 300 }, (_, i) => `e.comm === "${"x".repeat(14)}${i}"`).join(" || ")
  }`,
  `(e) => ${"(".repeat(300)}e.pid${")".repeat(300)} > 0`,
];

const MISSPELLED = [
  "syscall.on('reed:return').count()",
  "syscall.on('opennat:entry').count()",
  "syscall.on('read:exit').count()",
  "syscall.on('read:entry:x').count()",
  "syscall.on(':entry').count()",
  "tracepoint('block:block_rq_isue').count()",
  "tracepoint('sched:nope').count()",
  "tracepoint('nocolon').count()",
  "tracepoint('a:b:c').count()",
  "io.on('strt').count()",
  "aio.on('reep').count()",
  "aio.on('read:entry').count()",
];

/** One-liners whose mistake shows only when the session is planned. */
const MISPLANNED = [
  "",
  "// nothing",
  "syscall.on('read:return', undefined, { buffers: { nope: 8 } }).count()",
  "syscall.on('getppid:entry', undefined, { buffers: { buf: 8 } }).count()",
  "span(syscall.on('read:entry'), syscall.on('read:return'), { key: [(e) => e.tid, (e) => [e.tid, e.pid]] }).count()",
  "syscall.on('read:return').where((e) => e.args.nope > 0).count()",
  "syscall.on('read:return').count((e) => e.nope)",
  "syscall.on('openat:entry', (e) => console.log(e.args.filenme))",
  "syscall.on('openat:entry', (e) => console.log(e.arg.filename.length))",
];

const RECIPES = [
  "aio_latency",
  "biolatency",
  "biosnoop",
  "fileslower",
  "iotop",
  "iowait",
  "opensnoop",
  "syscount",
  "syslat",
  "uring_latency",
];
const BAD_RECIPE_ARGS = [
  ["-d", "2"],
  ["-d", "soon"],
  ["-p", "0"],
  ["-p", "abc"],
  ["-p", "1.5"],
  ["--bogus"],
  ["-a", "-i", "0s"],
  ["-p", "1", "-c", "true"],
  ["-c", "no-such-command-xyz"],
  ["-c", "/etc/passwd"],
];

/** Each recipe's own options, given values they refuse. */
const BAD_RECIPE_OPTIONS: Record<string, string[][]> = {
  aio_latency: [["--by", "nope"], ["--pid", "99999999"], ["--pid", "0"]],
  biolatency: [["--disk", "nosuchdisk"], ["-a", "--disk", "/dev/null"]],
  biosnoop: [["--disk", "nosuchdisk"]],
  fileslower: [["--min-ms", "-1"], ["--min-ms", "soon"]],
  iotop: [["--top", "0"], ["--top", "abc"], ["--disk", "nosuchdisk"]],
  iowait: [["--top", "0"], ["--top", "1.5"]],
  opensnoop: [["-n", "averyveryverylongname"]],
  syscount: [["--top", "0"], ["--top", "-3"], ["--top", "2.5"], ["--top", "NaN"]],
  syslat: [["--top", "0"], ["--top", "x"]],
};

function cases(): Case[] {
  const out: Case[] = [];
  for (const d of BAD_DURATIONS) {
    out.push({ file: "cli.ts", args: ["-e", COUNT, "-d", d] });
    out.push({ file: "cli.ts", args: ["-e", COUNT, "-i", d] });
  }
  out.push(oneLiner(COUNT, "-i", "0s"), oneLiner(COUNT, "-i", "0ms"));
  for (const p of BAD_PIDS) out.push(oneLiner(COUNT, "-p", p));
  out.push(oneLiner(COUNT, "-p", "4194300"), oneLiner(COUNT, "-p", "1", "-c", "true"));
  for (const f of ["xml", "JSON", "", "csv"]) out.push(oneLiner(COUNT, "--format", f));
  for (
    const args of [["--bogus"], ["-z"], ["-e"], ["frobnicate"], ["run"], ["pin"], ["-l", "a", "b"]]
  ) {
    out.push({ file: "cli.ts", args });
  }
  for (
    const args of [
      ["run", "/nonexistent/recipe.ts"],
      ["run", "README.md"],
      ["run", "/tmp"],
      ["run", "--integrity", "sha1-abc", "https://example.invalid/r.ts"],
      ["-d", "1s", "run", "scripts/syscount.ts"],
      ["pin", "notaurl"],
      ["-l", "zzz*"],
      ["-l", "-e", COUNT],
      ["-e", COUNT, "run", "scripts/syscount.ts"],
    ]
  ) out.push({ file: "cli.ts", args });
  for (const o of ["/proc/nope/x", "/", "/nonexistent-dir/out"]) out.push(oneLiner(COUNT, "-o", o));
  out.push(oneLiner(COUNT, "-c", "no-such-command-xyz"), oneLiner(COUNT, "-c", "/nonexistent/bin"));
  out.push(oneLiner(COUNT, "-c", "/etc/passwd"), oneLiner(COUNT, "-c", "/tmp"));
  for (
    const code of [
      "syscall.on(",
      "}{",
      "syscall.on('read:return').count(",
      "exit((",
      "y",
      "nope.on('read:return').count()",
      "syscall.on('read:return').count().nope()",
    ]
  ) {
    out.push(oneLiner(code));
  }
  out.push(oneLiner(`${"(".repeat(1200)}1${")".repeat(1200)}`));
  for (const site of SIZE_SITES) {
    for (const s of BAD_SIZES) out.push(oneLiner(site.replace("S", s)));
  }
  for (const site of FUNCTION_SITES) {
    for (const f of NOT_FUNCTIONS) out.push(oneLiner(site.replace("F", f)));
  }
  for (const l of BAD_LAMBDAS) {
    out.push(oneLiner(`syscall.on('getppid:entry').where(${l}).count()`));
  }
  out.push(...MISSPELLED.map((code) => oneLiner(code)));
  out.push(...MISPLANNED.map((code) => oneLiner(code)));
  for (const r of RECIPES) {
    for (const args of [...BAD_RECIPE_ARGS, ...BAD_RECIPE_OPTIONS[r] ?? []]) {
      out.push({ file: `scripts/${r}.ts`, args });
    }
  }
  return out;
}

// ---- the test -----------------------------------------------------------------------------

Deno.test("every malformed input is one line on stderr, exit 2, and leaves nothing in the kernel", async () => {
  const all = cases();
  ok(all.length >= 200, `${all.length} inputs`);
  // On one CPU (the emulated 6.1 VM leg, where each Deno start takes seconds) every fourth
  // input runs: none depends on the kernel, and the other leg runs them all.
  const run = navigator.hardwareConcurrency > 1 ? all : all.filter((_, i) => i % 4 === 0);
  const before = kernelIds();
  const results = await pool(run, 8, (c) => denoRun(c.file, c.args));
  const wrong = results.flatMap((r: Output, i) => {
    const err = lines(r.stderr);
    // Exactly one line: no blank lines either, and it ends the output.
    const oneLine = err.length === 1 && r.stderr === `${err[0]}\n`;
    const bad = r.code !== 2 || !oneLine || /^\s+at /m.test(r.stderr);
    const c = run[i];
    return bad
      ? [
        `${c.file} ${JSON.stringify(c.args).slice(0, 160)}: exit ${r.code}, ${err.length} lines: ${
          r.stderr.slice(0, 300)
        }`,
      ]
      : [];
  });
  equal(wrong, [], `${wrong.length} of ${run.length} inputs went wrong`);
  equal(await leftBehind(before), [], "BPF objects left in the kernel");
});
