/**
 * A session touches only its own processes: it signals the command it started and those of
 * its descendants that still are, never a `pid` option's process nor one that reused the pid
 * of an exited child; exited children leave the pid set, so a command may start any number of
 * processes over its life; targets are checked before anything loads.
 *
 * Needs root (ns_last_pid, BPF) and perl.
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { run, session, syscall } from "../../mod.ts";
import { TargetError } from "../../runtime/process_tree.ts";
import { FOLLOW_LOST } from "../../runtime/providers/follow.ts";
import { exists } from "../fixtures/bpf.ts";
import { denoRun } from "../fixtures/subprocess.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    const state = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1][0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Polls `f` every 20 ms until it is defined, for at most 10 s. */
async function until<T>(f: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("timed out");
}

/**
 * Starts `sleep 60` with pid `want`, not a descendant of anything traced: a perl process sets
 * ns_last_pid and forks at once (one thread, so nothing of its own takes the pid between),
 * then exits. Returns the pid, or undefined when another process took it first.
 */
function spawnWithPid(want: number): number | undefined {
  const out = new Deno.Command("perl", {
    args: [
      "-e",
      `open(my $f, ">", "/proc/sys/kernel/ns_last_pid") or die; print $f ${want - 1}; ` +
      `close $f; my $p = fork(); ` +
      `if ($p == 0) { open(STDOUT, ">", "/dev/null"); exec("sleep", "60") } print $p`,
    ],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const pid = Number(new TextDecoder().decode(out.stdout));
  if (pid === want) return pid;
  if (pid > 0) Deno.kill(pid, "SIGKILL");
  return undefined;
}

Deno.test("an exited child's pid reused by an unrelated process is neither traced nor killed; live descendants are", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-process-" });
  let unrelated: number | undefined;
  try {
    // A child that exits at once, a grandchild that lives on, and the command waiting.
    const command = `sh -c 'echo $$ > ${dir}/gone'; sleep 60 & echo $! > ${dir}/descendant; ` +
      `sleep 60`;
    const sleepers: number[] = [];
    syscall.on("clock_nanosleep:entry").on((e) => sleepers.push(e.pid));
    // The session ends (before its command) once the unrelated process has started and slept.
    const stop = new AbortController();
    const summary = await run({
      command: ["sh", "-c", command],
      signal: stop.signal,
      onAttached: () => {
        (async () => {
          const gone = await until(() => {
            try {
              const pid = Number(Deno.readTextFileSync(`${dir}/gone`));
              return pid && !alive(pid) ? pid : undefined;
            } catch {
              return undefined;
            }
          });
          for (let i = 0; i < 100 && !unrelated; i++) unrelated = spawnWithPid(gone);
          await new Promise((r) => setTimeout(r, 500));
        })().finally(() => stop.abort());
      },
    });
    equal(summary.reason, "aborted");
    ok(unrelated, "could not start a process with the exited child's pid");
    const descendant = Number(await Deno.readTextFile(`${dir}/descendant`));
    await until(() => alive(descendant) ? undefined : true);
    ok(alive(unrelated), "the process that reused the pid was killed");
    ok(!sleepers.includes(unrelated), "the process that reused the pid was traced");
    ok(sleepers.includes(descendant), "the live descendant was traced");
  } finally {
    if (unrelated) Deno.kill(unrelated, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a command that starts 20,000 processes over its life is traced exactly", async () => {
  const n = 20_000;
  const calls = syscall.on("getppid:entry").count();
  const summary = await run({
    command: [
      "perl",
      "-e",
      `for (1..${n}) { my $p = fork(); if (!$p) { syscall(110); exit 0 } waitpid($p, 0) }`,
    ],
    printAggregations: false,
  });
  equal(summary.commandExitCode, 0);
  equal(summary.counters[FOLLOW_LOST], 0);
  const row = calls.read()!.rows[0]?.value;
  equal(row?.kind === "count" && row.value, n);
});

Deno.test("targets are checked before anything loads", async () => {
  const bad: Array<[Parameters<typeof run>[0], RegExp]> = [
    [{ pid: 1.5 }, /pid '1.5' is not a process id/],
    [{ pid: 4294967297 }, /pid '4294967297' is not a process id/],
    [{ pid: 0 }, /pid '0' is not a process id/],
    [{ pid: [Deno.pid, -1] }, /pid '-1' is not a process id/],
    [{ pid: 4194304 }, /pid 4194304: no such process/],
    [{ pid: Deno.pid, command: ["true"] }, /not both/],
  ];
  for (const [options, message] of bad) {
    syscall.on("getppid:entry").count();
    await rejects(run(options), (e) => e instanceof TargetError && message.test(e.message));
    equal(session().programs.length, 0);
  }
});

Deno.test("a pid option's process is traced, never signalled", async () => {
  const other = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    syscall.on("getppid:entry").count();
    const summary = await run({ pid: other.pid, duration: "300ms" });
    equal(summary.reason, "duration");
    ok(alive(other.pid));
  } finally {
    other.kill("SIGKILL");
    await other.status;
  }
});

Deno.test("probe and recipes refuse bad pids in one line, exit 2", async () => {
  const cases = [
    ["cli.ts", "-e", "syscall.on('getppid:entry').count()", "-p", "1.5"],
    ["cli.ts", "-e", "syscall.on('getppid:entry').count()", "-p", "4294967297"],
    ["cli.ts", "-e", "syscall.on('getppid:entry').count()", "-p", String(Deno.pid), "-c", "true"],
    ["scripts/syscount.ts", "--pid", "1.5"],
    ["scripts/syscount.ts", "--pid", "4194304"],
  ];
  for (const [file, ...args] of cases) {
    const r = await denoRun(file, args);
    equal(r.code, 2, `${file} ${args.join(" ")}: ${r.stderr}`);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(/pid|process/.test(r.stderr), r.stderr);
  }
});

Deno.test("a recipe started by probe run ends when probe is killed", async () => {
  const dir = await Deno.makeTempDir();
  const ready = `${dir}/ready`;
  const recipe = `${dir}/recipe.ts`;
  await Deno.writeTextFile(
    recipe,
    `import { run, syscall } from "${ROOT}mod.ts";\n` +
      `syscall.on("getppid:entry").count();\n` +
      `await run({ onAttached: () => Deno.writeTextFileSync(${JSON.stringify(ready)}, "") });\n`,
  );
  const probe = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli.ts`, "run", recipe],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let recipePid = 0;
  try {
    await until(() => alive(probe.pid) && exists(ready) ? true : undefined);
    const children = Deno.readTextFileSync(`/proc/${probe.pid}/task/${probe.pid}/children`);
    recipePid = Number(children.trim().split(" ")[0]);
    ok(alive(recipePid), `the recipe runs as pid ${recipePid}`);
    probe.kill("SIGKILL");
    await probe.status;
    await until(() => alive(recipePid) ? undefined : true);
  } finally {
    // (pid 0 would be this process group: only a recipe that was found is killed.)
    const recipe = () => recipePid > 0 && Deno.kill(recipePid, "SIGKILL");
    for (const kill of [() => probe.kill("SIGKILL"), recipe]) {
      try {
        kill();
      } catch { /* already gone */ }
    }
    await Deno.remove(dir, { recursive: true });
  }
});
