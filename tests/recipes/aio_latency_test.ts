import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { recipe } from "../fixtures/subprocess.ts";

Deno.test("aio_latency --help explains every option", async () => {
  const r = await recipe("aio_latency", "--help");
  equal(r.code, 0);
  for (const o of ["--pid", "--command", "--interval", "--duration", "--by", "--json", "--demo"]) {
    ok(r.stdout.includes(o), o);
  }
});

Deno.test("aio_latency: a usage error is one line and exit code 2", async () => {
  const r = await recipe("aio_latency", "--by", "color");
  equal(r.code, 2);
  equal(r.stderr.trim().split("\n").length, 1);
  ok(r.stderr.includes("--by 'color'"), r.stderr);
});

Deno.test("aio_latency run bare traces its own AIO workload: 4096 requests, histogram and summary", async () => {
  const r = await recipe("aio_latency");
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
  const out = JSON.parse(r.stdout);
  const counts = Object.fromEntries(
    out.groups.map((g: { key: string; count: number }) => [g.key, g.count]),
  );
  // The workload writes where (batch + slot) % 5 === 0, in 512 batches of 8.
  let writes = 0;
  for (let batch = 0; batch < 512; batch++) {
    for (let slot = 0; slot < 8; slot++) if ((batch + slot) % 5 === 0) writes++;
  }
  equal(counts, { PREAD: 4096 - writes, PWRITE: writes });
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
  } finally {
    await Deno.remove(file);
  }
});
