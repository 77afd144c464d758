/**
 * System-wide tracing leaves the tracer out: the process calling run() and, for a recipe that
 * `probe run` started, probe too. A process started after attaching is counted exactly.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { run, syscall } from "../../mod.ts";
import { parseRecords } from "../fixtures/records.ts";
import { attachedPrograms } from "../../testing/attached.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CALLS = 300;
const perl = () => new Deno.Command("perl", { args: ["-e", `getppid() for 1..${CALLS}`] }).spawn();

/** getppid calls by pid, system-wide, while this process and a child make some. */
async function countByPid(traceSelf?: boolean): Promise<{ own: number; child: number }> {
  const counts = syscall.on("getppid:entry").count((e) => e.pid);
  let child: Deno.ChildProcess | undefined;
  // This process calls getppid too, all the while.
  const own = setInterval(() => Deno.ppid, 5);
  const ac = new AbortController();
  await run({
    traceSelf,
    printAggregations: false,
    signal: ac.signal,
    onAttached: () => {
      child = perl();
      child.status.then(() => setTimeout(() => ac.abort(), 100));
    },
  });
  clearInterval(own);
  const of = (pid: number | undefined) =>
    counts.read()?.rows.find((r) => r.key[0] === pid)?.value as { value: number } | undefined;
  return { own: of(Deno.pid)?.value ?? 0, child: of(child?.pid)?.value ?? 0 };
}

Deno.test("run() without a pid leaves its own process out; traceSelf keeps it", async () => {
  const left = await countByPid();
  equal(left, { own: 0, child: CALLS });
  const kept = await countByPid(true);
  equal(kept.child, CALLS);
  ok(kept.own > 0, "traceSelf: this process's getppid calls are counted");
});

/** The children of process `pid`. */
function children(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

Deno.test("probe run: neither probe nor its recipe is in the recipe's results", async () => {
  const probe = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}cli.ts`,
      "run",
      `${ROOT}scripts/syscount.ts`,
      "--per-process",
      "--top",
      "100000",
      "-d",
      "4s",
      "--format",
      "ndjson",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let recipe: number | undefined;
  for (let i = 0; i < 600 && !(recipe && attachedPrograms(recipe) > 0); i++) {
    recipe = children(probe.pid)[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  const child = perl();
  await child.status;
  const out = await probe.output();
  const text = new TextDecoder().decode(out.stdout);
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const table = parseRecords(text, "ndjson").find((r) => r.type === "table");
  ok(table?.type === "table", text);
  const pids = new Set(table.rows.map((r) => r.pid));
  ok(recipe !== undefined && !pids.has(recipe), `the recipe ${recipe} is in its results`);
  ok(!pids.has(probe.pid), `probe ${probe.pid} is in its recipe's results`);
  const getppid = table.rows.find((r) => r.pid === child.pid && r.name === "getppid");
  equal(getppid?.count, CALLS, text);
});
