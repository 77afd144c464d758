/**
 * Tests of the block:block_rq_issue tracepoint against a private loop device: dd's direct I/O
 * goes through it unmerged and uncached, and /proc/diskstats is the independent count of the
 * bytes that went through.
 *
 * Events are kept only for the loop device's number, so other I/O on the machine cannot leak
 * in. The `command` filter is enough to see every request: with the loop driver (blk-mq, one
 * hardware queue, no scheduler) a direct I/O request is issued by the task that submits it, so
 * block_rq_issue fires in dd's context; the loop worker threads only do the backing file's I/O.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { run, type RunSummary, tracepoint, type TracepointEventOf } from "../../mod.ts";
import {
  type DiskStats,
  diskstats,
  type LoopDevice,
  withLoopDevice,
} from "../../testing/loop_device.ts";

type IssueEvent = TracepointEventOf<"block:block_rq_issue">;

const SECTOR = 512;
const KiB = 1024;
const MiB = 1024 * KiB;
const DEVICE_MIB = 64;

/** Flags of the kernel's blk_fill_rwbs(): [flush] op [fua] [readahead] [sync] [meta] [atomic]. */
const RWBS = /^F?(?:W|R|DE?|F|N)F?A?S?M?U?$/;

/** A dev_t as the kernel encodes it inside tracepoints (MINORBITS = 20), unlike user space. */
function kernelDev(dev: LoopDevice): number {
  return (dev.major << 20) | dev.minor;
}

interface Traced {
  events: IssueEvent[];
  summary: RunSummary;
  /** The device's /proc/diskstats counters after the run minus before. */
  delta: DiskStats;
}

/**
 * Runs `argv` while tracing; keeps the block_rq_issue events of `dev`, filtered by device in
 * the kernel. Not by process: a request may be issued by a kernel worker rather than by the
 * task that submitted it (on 6.1 a loop device's requests are issued by kblockd).
 */
async function traceIssues(dev: LoopDevice, argv: string[]): Promise<Traced> {
  const events: IssueEvent[] = [];
  tracepoint("block:block_rq_issue").where((e, p) => e.args.dev === p.dev, { dev: kernelDev(dev) })
    .on((e) => events.push(e));
  const before = diskstats(dev.name);
  const stop = new AbortController();
  let status: Deno.CommandStatus | undefined;
  const summary = await run({
    signal: stop.signal,
    onAttached: () => {
      new Deno.Command(argv[0], { args: argv.slice(1) }).spawn().status.then((s) => {
        status = s;
        stop.abort();
      });
    },
  });
  const after = diskstats(dev.name);
  assertEquals(summary.reason, "aborted");
  assertEquals(status?.code, 0, `${argv.join(" ")} failed`);
  assertEquals(summary.dropped, 0);
  const delta = Object.fromEntries(
    Object.keys(after).map((k) => [k, after[k as keyof DiskStats] - before[k as keyof DiskStats]]),
  ) as unknown as DiskStats;
  return { events, summary, delta };
}

/** The sector ranges [start, end) the events cover, sorted and merged. */
function coverage(events: IssueEvent[]): [number, number][] {
  const ranges = events
    .map((e): [number, number] => [e.args.sector, e.args.sector + e.args.nr_sector])
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of ranges) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** Checks what every request of a dd run must look like: its op, size and place. */
function assertRequests(events: IssueEvent[], op: "W" | "R"): void {
  for (const e of events) {
    assertEquals(typeof e.args.rwbs, "string");
    match(e.args.rwbs, RWBS);
    assert(e.args.rwbs.startsWith(op), `'${e.args.rwbs}' is not a ${op} request`);
    assertEquals(e.args.bytes, e.args.nr_sector * SECTOR);
  }
}

const sum = (events: IssueEvent[]) => events.reduce((n, e) => n + e.args.bytes, 0);

Deno.test("block:block_rq_issue sees every byte of a dd oflag=direct on a loop device", async () => {
  await withLoopDevice(DEVICE_MIB, async (dev) => {
    const bytes = 256 * 64 * KiB;
    const { events, delta } = await traceIssues(dev, [
      "dd",
      "if=/dev/zero",
      `of=${dev.path}`,
      "bs=64k",
      "count=256",
      "oflag=direct",
      "status=none",
    ]);
    const writes = events.filter((e) => e.args.rwbs.includes("W"));
    assertEquals(writes.length, events.length, "dd only writes to the device");
    assertRequests(writes, "W");
    assertEquals(sum(writes), bytes);
    assertEquals(coverage(writes), [[0, bytes / SECTOR]]);
    // Ground truth: what the kernel accounted for the device.
    assertEquals(delta.sectorsWritten * SECTOR, bytes);
    assertEquals(delta.writesCompleted, writes.length);
    assertEquals(delta.sectorsRead, 0);
  });
});

Deno.test("block:block_rq_issue sees every byte of a dd iflag=direct on a loop device", async () => {
  await withLoopDevice(DEVICE_MIB, async (dev) => {
    const bytes = 128 * 64 * KiB;
    const { events, delta } = await traceIssues(dev, [
      "dd",
      `if=${dev.path}`,
      "of=/dev/null",
      "bs=64k",
      "count=128",
      "iflag=direct",
      "status=none",
    ]);
    const reads = events.filter((e) => e.args.rwbs.includes("R"));
    assertEquals(reads.length, events.length, "dd only reads from the device");
    assertRequests(reads, "R");
    assertEquals(sum(reads), bytes);
    assertEquals(coverage(reads), [[0, bytes / SECTOR]]);
    assertEquals(delta.sectorsRead * SECTOR, bytes);
    assertEquals(delta.readsCompleted, reads.length);
    assertEquals(delta.sectorsWritten, 0);
  });
});

Deno.test("block:block_rq_issue decodes comm and the __data_loc cmd as strings, sectors in range", async () => {
  await withLoopDevice(DEVICE_MIB, async (dev) => {
    const deviceSectors = DEVICE_MIB * MiB / SECTOR;
    // The last MiB of the device, so that sectors are large and end exactly at the device's end.
    const { events } = await traceIssues(dev, [
      "dd",
      "if=/dev/zero",
      `of=${dev.path}`,
      "bs=64k",
      "count=16",
      `seek=${DEVICE_MIB * 16 - 16}`,
      "oflag=direct",
      "status=none",
    ]);
    assert(events.length > 0, "no events for the loop device");
    for (const e of events) {
      assertEquals(typeof e.args.comm, "string");
      // The record's comm is the issuing task's, dd's or a kernel worker's (see traceIssues).
      match(e.args.comm, /^(dd|kworker\/\S+)$/);
      assertEquals(e.args.comm, e.comm);
      // `cmd` holds a SCSI passthrough command; a loop device's requests have none.
      assertEquals(typeof e.args.cmd, "string");
      assertEquals(e.args.cmd, "");
      assert(Number.isSafeInteger(e.args.sector));
      assert(e.args.sector >= 0 && e.args.sector + e.args.nr_sector <= deviceSectors);
    }
    assertEquals(coverage(events), [[deviceSectors - 16 * 64 * KiB / SECTOR, deviceSectors]]);
  });
});
