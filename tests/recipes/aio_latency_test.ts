import { deepStrictEqual as equal, ok } from "node:assert/strict";
import type { TableRecord } from "../../mod.ts";
import { parseRecords, tableOf } from "../fixtures/records.ts";
import { recipe } from "../fixtures/subprocess.ts";

Deno.test("aio_latency --help explains every option, in the layout of every recipe", async () => {
  const r = await recipe("aio_latency", "--help");
  equal(r.code, 0);
  ok(r.stdout.startsWith("usage: aio_latency [options] [interval [count]]\n"), r.stdout);
  for (const o of ["--pid", "--command", "--interval", "--duration", "--by", "--json", "--demo"]) {
    ok(r.stdout.includes(o), o);
  }
  // The demo's own entry point is not an option of the recipe.
  ok(!r.stdout.includes("--workload"), r.stdout);
});

Deno.test("aio_latency: a usage error is one line and exit code 2", async () => {
  const r = await recipe("aio_latency", "--by", "color");
  equal(r.code, 2);
  equal(r.stderr.trim().split("\n").length, 1);
  ok(r.stderr.includes("--by 'color'"), r.stderr);
});

Deno.test("aio_latency --demo traces its own AIO workload: 4096 requests, histogram and summary", async () => {
  const r = await recipe("aio_latency", "--demo");
  equal(r.code, 0, r.stderr);
  ok(/@aio usecs, deno \(pid \d+\):/.test(r.stdout), r.stdout);
  ok(
    /count 4096, mean [\d.]+ (us|ms), p50 [\d.]+ (us|ms), p99 [\d.]+ (us|ms), max/.test(r.stdout),
    r.stdout,
  );
  ok(r.stderr.includes("4096 submitted, 4096 reaped and timed, 0 reaped without"), r.stderr);
});

Deno.test("aio_latency --json --by opcode splits the demo's reads and writes", async () => {
  const r = await recipe("aio_latency", "--demo", "--json", "--by", "opcode");
  equal(r.code, 0, r.stderr);
  const tables = parseRecords(r.stdout, "json").filter((t): t is TableRecord => t.type === "table");
  equal(tables.map((t) => [t.source, t.name, t.interval]), [["aio_latency", "groups", null]]);
  const [{ rows, summary }] = tables;
  const counts = Object.fromEntries(rows.map((g) => [g.key, g.count]));
  // The workload writes where (batch + slot) % 5 === 0, in 512 batches of 8.
  let writes = 0;
  for (let batch = 0; batch < 512; batch++) {
    for (let slot = 0; slot < 8; slot++) if ((batch + slot) % 5 === 0) writes++;
  }
  equal(counts, { PREAD: 4096 - writes, PWRITE: writes });
  ok(rows.every((g) => g.kind === "aio"), r.stdout);
  // The counters line's numbers, under the table; no blind spot: every request was reaped.
  equal(summary, {
    submitted: 4096,
    reaped: 4096,
    unmatched: 0,
    cancelled: 0,
    lost: 0,
    blind_spot: null,
  });
});

Deno.test("aio_latency -i: each interval's requests once, in tables numbered 1, 2, ..., the last one the rest", async () => {
  const r = await recipe("aio_latency", "--demo", "--format", "ndjson", "-i", "100ms");
  equal(r.code, 0, r.stderr);
  const tables = parseRecords(r.stdout, "ndjson").filter((t): t is TableRecord =>
    t.type === "table"
  );
  const intervals = tables.map((t) => t.interval);
  equal(intervals, intervals.map((_, i) => i + 1));
  ok(tables.length >= 2, r.stdout);
  const count = (t: TableRecord) => t.rows.reduce((n, g) => n + Number(g.count), 0);
  equal(tables.reduce((n, t) => n + count(t), 0), 4096);
});

Deno.test("aio_latency reports the blind spot when an application reaps in user space", async () => {
  const file = await Deno.makeTempFile({ dir: "/var/tmp" });
  try {
    const fio = `fio --name=t --filename=${file} --size=16m --rw=randread --bs=4k --iodepth=8 ` +
      `--ioengine=libaio --direct=1 --number_ios=2048 --userspace_reap=1 ` +
      `--iodepth_batch_complete_min=0 --output-format=terse`;
    const r = await recipe("aio_latency", "-c", `${fio} > /dev/null`);
    equal(r.code, 0, r.stderr);
    ok(r.stdout.includes("blind spot: 2048 of 2048 requests"), r.stdout);
    ok(r.stdout.includes("reaps completions from the mapped ring in user space"), r.stdout);
    const json = await recipe("aio_latency", "--format", "ndjson", "-c", `${fio} > /dev/null`);
    equal(json.code, 0, json.stderr);
    const { summary } = tableOf(json.stdout, "ndjson", "groups");
    ok(String(summary?.blind_spot).startsWith("2048 of 2048 requests"), json.stdout);
  } finally {
    await Deno.remove(file);
  }
});
