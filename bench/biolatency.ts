/**
 * The cost of a block I/O latency histogram, against bpftrace's equivalent script, measured
 * side by side: fio randread 4k, iodepth 32, direct, on a loop device over /dev/shm; rounds of
 * no tracing, tsprobe's io:done, tsprobe's span over the block tracepoints, and bpftrace in
 * turn, and the IOPS each lost against the untraced runs.
 *
 *   tools/run bench/biolatency.ts [ROUNDS] [SECONDS]
 */
import { io, run, span, tracepoint } from "../mod.ts";
import { withLoopDevice } from "../testing/loop_device.ts";
import { median, whileBpftrace } from "./fixtures/bpftrace.ts";

const rounds = Number(Deno.args[0] ?? 3);
const seconds = Number(Deno.args[1] ?? 5);

async function fio(device: string): Promise<number> {
  const out = await new Deno.Command("fio", {
    args: [
      "--name=bench",
      `--filename=${device}`,
      "--rw=randread",
      "--bs=4k",
      "--iodepth=32",
      "--ioengine=libaio",
      "--direct=1",
      `--runtime=${seconds}`,
      "--time_based",
      "--output-format=json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`fio failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)).jobs[0].read.iops;
}

/** The io provider's done latency, as a user writes it. */
function ioScript(name: string): void {
  io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name })
    .hist((e) => e.latencyNs! / 1000);
}

/** A span between the block tracepoints, as bpftrace's script does it. */
function spanScript(dev: number): void {
  const issue = tracepoint("block:block_rq_issue").where((e, p) => e.args.dev === p.dev, { dev });
  const done = tracepoint("block:block_rq_complete");
  span(issue, done, { key: (e) => [e.args.dev, e.args.sector] }).hist((e) => e.latencyNs / 1000);
}

async function withTsprobe(script: () => void, device: string): Promise<number> {
  script();
  const stop = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => attached = r);
  const session = run({ signal: stop.signal, printAggregations: false, onAttached: attached });
  await ready;
  const iops = await fio(device);
  stop.abort();
  const summary = await session;
  const rows = summary.aggregations[0].rows[0]?.value;
  if (rows?.kind !== "hist" || rows.count === 0) throw new Error("tsprobe traced nothing");
  return iops;
}

async function withBpftrace(dev: number, device: string): Promise<number> {
  const script = `tracepoint:block:block_rq_issue /args->dev == ${dev}/ ` +
    `{ @start[args->dev, args->sector] = nsecs; } ` +
    `tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ ` +
    `{ @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000); ` +
    `delete(@start[args->dev, args->sector]); }`;
  return await whileBpftrace(script, () => fio(device));
}

await withLoopDevice(256, async (loop) => {
  const dev = (loop.major << 20) | loop.minor;
  const base: number[] = [], viaIo: number[] = [], viaSpan: number[] = [], theirs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    base.push(await fio(loop.path));
    viaIo.push(await withTsprobe(() => ioScript(loop.name), loop.path));
    viaSpan.push(await withTsprobe(() => spanScript(dev), loop.path));
    theirs.push(await withBpftrace(dev, loop.path));
    console.error(
      `round ${i + 1}: ${[base, viaIo, viaSpan, theirs].map((x) => x.at(-1)!.toFixed(0))} IOPS ` +
        `(none, tsprobe io:done, tsprobe span, bpftrace)`,
    );
  }
  const loss = (xs: number[]) =>
    `${median(xs).toFixed(0)} (-${(100 * (1 - median(xs) / median(base))).toFixed(1)}%)`;
  console.log(
    `biolatency: fio randread 4k iodepth 32 on ${loop.name}: ${median(base).toFixed(0)} IOPS ` +
      `untraced; tsprobe io:done ${loss(viaIo)}, tsprobe span ${loss(viaSpan)}, bpftrace ` +
      `${loss(theirs)}; medians of ${rounds} rounds of ${seconds} s`,
  );
});
