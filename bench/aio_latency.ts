/**
 * The cost of timing every AIO request: fio libaio randread 4k, iodepth 32, direct, on a loop
 * device over /dev/shm; rounds of no tracing, aio_latency's kernel side (per-request timing
 * and its histogram per process, system-wide), and a bpftrace script keeping per-iocb maps
 * keyed the same way ({pid, ctx_id, iocb}), in turn; the IOPS each took against the untraced
 * runs.
 *
 *   tools/run bench/aio_latency.ts [ROUNDS] [SECONDS]
 */
import { aio, AIO_COUNTERS, run } from "../mod.ts";
import { withLoopDevice } from "../testing/loop_device.ts";
import { median, whileBpftrace } from "./fixtures/bpftrace.ts";

const rounds = Number(Deno.args[0] ?? 3);
const seconds = Number(Deno.args[1] ?? 5);

function fioArgs(device: string, output: string): string[] {
  return [
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
    `--output=${output}`,
  ];
}

async function iops(output: string): Promise<number> {
  return JSON.parse(await Deno.readTextFile(output)).jobs[0].read.iops;
}

async function untraced(device: string, output: string): Promise<number> {
  const r = await new Deno.Command("fio", { args: fioArgs(device, output) }).output();
  if (!r.success) throw new Error("fio failed");
  return iops(output);
}

/**
 * aio_latency's kernel side, in this process: per-request timing keyed {tgid, ctx_id, iocb}
 * and its default histogram per process, system-wide as the bpftrace script is.
 */
async function withAioLatency(device: string, output: string): Promise<number> {
  aio.on("reap").hist((e) => e.latencyNs / 1000, { by: (e) => [e.comm, e.pid] });
  const stop = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => attached = r);
  const session = run({ signal: stop.signal, printAggregations: false, onAttached: attached });
  await ready;
  let iops;
  try {
    iops = await untraced(device, output);
  } finally {
    stop.abort();
  }
  const summary = await session;
  if ((summary.counters[AIO_COUNTERS.reaped] ?? 0) === 0) throw new Error("nothing was timed");
  return iops;
}

// args->ret is read once before the loops: bpftrace 0.17 fails to load it inside unroll.
const BPFTRACE = `
tracepoint:syscalls:sys_enter_io_submit { @sctx[tid] = args->ctx_id; @iocbpp[tid] = args->iocbpp; }
tracepoint:syscalls:sys_exit_io_submit /@iocbpp[tid]/ {
  $n = args->ret; $i = 0;
  unroll(32) {
    if ($i < $n) {
      $p = *(uint64 *)(@iocbpp[tid] + $i * 8);
      @start[pid, @sctx[tid], $p] = nsecs;
    }
    $i++;
  }
  delete(@iocbpp[tid]); delete(@sctx[tid]);
}
tracepoint:syscalls:sys_enter_io_getevents { @ev[tid] = args->events; @gctx[tid] = args->ctx_id; }
tracepoint:syscalls:sys_exit_io_getevents /@ev[tid]/ {
  $n = args->ret; $i = 0;
  unroll(32) {
    if ($i < $n) {
      $obj = *(uint64 *)(@ev[tid] + $i * 32 + 8);
      $s = @start[pid, @gctx[tid], $obj];
      if ($s) {
        @usecs = hist((nsecs - $s) / 1000);
        delete(@start[pid, @gctx[tid], $obj]);
      }
    }
    $i++;
  }
  delete(@ev[tid]); delete(@gctx[tid]);
}`;

function withBpftrace(device: string, output: string): Promise<number> {
  return whileBpftrace(BPFTRACE, () => untraced(device, output));
}

await withLoopDevice(256, async (loop) => {
  const output = await Deno.makeTempFile();
  try {
    const base: number[] = [], ours: number[] = [], theirs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      base.push(await untraced(loop.path, output));
      ours.push(await withAioLatency(loop.path, output));
      theirs.push(await withBpftrace(loop.path, output));
      console.error(
        `round ${i + 1}: ${[base, ours, theirs].map((x) => x.at(-1)!.toFixed(0))} IOPS ` +
          `(none, aio_latency, bpftrace)`,
      );
    }
    const cost = (xs: number[]) =>
      `${median(xs).toFixed(0)} (-${(100 * (1 - median(xs) / median(base))).toFixed(1)}%)`;
    console.log(
      `aio_latency: fio libaio randread 4k iodepth 32 on ${loop.name}: ` +
        `${median(base).toFixed(0)} IOPS untraced; aio_latency ${cost(ours)}, bpftrace ` +
        `${cost(theirs)}; medians of ${rounds} rounds of ${seconds} s`,
    );
  } finally {
    await Deno.remove(output);
  }
});
