/**
 * biosnoop: one line per block I/O as it completes, like the BCC tool of that name: when it
 * completed, the process that issued it, the disk, read or write, the sector, the size, the
 * latency measured in the kernel, and the file it belongs to.
 *
 *   deno run -A scripts/biosnoop.ts --demo                a built-in direct-I/O workload
 *   deno run -A scripts/biosnoop.ts -a -d 10s --disk vda  every process's I/O on vda for 10 s
 *   deno run -A scripts/biosnoop.ts -p 1234 --json        one process, one JSON record per I/O
 *
 * Columns: TIME(s) is the completion's time in seconds since the first I/O issued while
 * tracing; LAT(ms) is io:done's `latencyNs`, from the I/O's issue to the device (block_rq_issue,
 * or block_bio_queue on bio-based devices) to its completion; T is R (read), W (write), RA
 * (readahead), WA (writeback) or - (flush, discard); FILE is io:done's `fi_pathname`
 * (`<none>` for metadata and raw devices). Completions of I/O issued before tracing began have
 * no latency and are left out (stderr says how many).
 *
 * Who issued it: io:done fires in whatever context completes the I/O (ksoftirqd, an idle CPU,
 * any process an interrupt lands on), so its own comm and pid mean nothing here; and io:start
 * on request-based devices (block_rq_issue) often runs where the I/O scheduler dispatches it (a
 * kblockd worker, another process), not where the I/O was submitted. COMM and PID are the
 * submitter's, the task the process filters (-p, -c) judge io:done by, as in BCC's biosnoop:
 * from block:block_io_start (a request's creation; block_getrq before Linux 6.5) on request-based devices, from io:start
 * (block_bio_queue) on bio-based ones. A writeback kworker submits buffered writes.
 *
 * How: the submission and the completion are joined here in JavaScript, by device and start
 * sector, oldest submission first. `span(..., io.on("done"), { carry })` would join them in the
 * kernel, but it carries only integers, and the comm is a string. block_io_start names the
 * whole disk where io:done names the partition; sysfs maps one to the other. The submission
 * events hold only what the handlers read (pid, comm, device, sector, time): an I/O costs
 * three small events on request-based devices (io:start's is dropped here), two on bio-based
 * ones. A request that another I/O joined at its front (a front merge) has moved its start
 * sector and the flush requests the kernel makes have no submission: their COMM and PID print
 * as `?`; submissions left waiting are forgotten, oldest first, past 65536.
 *
 * JSON (`--json`, `--format ndjson`): a record of the `event` type named `biosnoop` per I/O,
 * its data `{ time_s, comm, pid, disk, rw, sector, bytes, latency_ns, file, error }`, with `comm`
 * and `pid` null where the submission is not known (`?` in text), and `error` the errno of a
 * failed I/O (0 on success).
 *
 * @module
 */
import { B, type DevInfo, io, printable, requestCreated, type Stream } from "../mod.ts";
import { recipe, UsageError } from "../recipe.ts";

/** How `b_flags & (B_READ | B_WRITE | B_ASYNC)` prints. */
const FLAG_MASK = B.B_READ | B.B_WRITE | B.B_ASYNC;
const FLAG_LABELS: Record<number, string> = {
  [B.B_READ]: "R",
  [B.B_WRITE]: "W",
  [B.B_READ | B.B_ASYNC]: "RA",
  [B.B_WRITE | B.B_ASYNC]: "WA",
};

/**
 * The demo: 8 direct 64 KiB writes and 8 direct 4 KiB reads of a file under /var/tmp, unlinked
 * as soon as it is open so that it is gone even if the run is cut short.
 */
const DEMO = `f=$(mktemp /var/tmp/biosnoop.XXXXXX) && exec 3<>"$f" && rm -f "$f" && ` +
  `dd if=/dev/zero of=/dev/fd/3 bs=64k count=8 oflag=direct status=none && ` +
  `dd if=/dev/fd/3 of=/dev/null bs=4k count=8 iflag=direct status=none`;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The kernel's number (major << 20 | minor) of block device `name`, if there is one. */
function sysDevice(name: string): number | undefined {
  try {
    const [major, minor] = Deno.readTextFileSync(`/sys/class/block/${name}/dev`).split(":");
    return Number(major) << 20 | Number(minor);
  } catch {
    return undefined;
  }
}

const sysPath = (dev: number) => `/sys/dev/block/${dev >> 20}:${dev & 0xfffff}`;
const cached = <T>(f: (dev: number) => T) => {
  const known = new Map<number, T>();
  return (dev: number) => known.get(dev) ?? known.set(dev, f(dev)).get(dev)!;
};

/** The whole disk's number and the sectors of disk or partition `name` on it. */
function extent(name: string): { dev: number; first: number; end: number } {
  const sys = `/sys/class/block/${name}`;
  const read = (f: string) => Number(Deno.readTextFileSync(`${sys}/${f}`));
  const first = exists(`${sys}/partition`) ? read("start") : 0;
  return { dev: wholeDisk(sysDevice(name)!), first, end: first + read("size") };
}

/** Submissions kept waiting for their completion, at most. */
const MAX_IN_FLIGHT = 65536;

/** The numbers of the partitions of whole disk `name` (none for a partition). */
function partitionsOf(name: string): number[] {
  const sys = `/sys/class/block/${name}`;
  if (exists(`${sys}/partition`)) return [];
  return [...Deno.readDirSync(sys)].map((e) => `${name}/${e.name}`)
    .filter((n) => exists(`/sys/class/block/${n}/partition`))
    .map((n) => sysDevice(n)!);
}

/** Whether the device queues requests (blk-mq); a partition's queue is its disk's. */
const requestBased = cached((dev) =>
  exists(`${sysPath(dev)}/mq`) || exists(`${sysPath(dev)}/../mq`)
);

/** The whole disk of a partition (the device itself when it is not one). */
const wholeDisk = cached((dev) => {
  if (!exists(`${sysPath(dev)}/partition`)) return dev;
  const [major, minor] = Deno.readTextFileSync(`${sysPath(dev)}/../dev`).split(":");
  return Number(major) << 20 | Number(minor);
});

await recipe({
  name: "biosnoop",
  description: "One line per block I/O at its completion: time, submitting process, disk, " +
    "R/W, sector,\nbytes, latency from issue to completion (timed in the kernel) and file.",
  examples: [
    "biosnoop.ts --demo                     trace a built-in direct-I/O workload",
    "biosnoop.ts -a -d 10s --disk vda       every process's I/O on vda for 10 s",
    "biosnoop.ts -p 1234 --json             one process, one JSON record per I/O",
  ],
  options: {
    disk: { type: "string", help: "only this disk or partition (loop0, vda1)" },
  },
  demo: DEMO,
  setup(o) {
    const disk = o.disk?.replace(/^\/dev\//, "");
    if (disk !== undefined && sysDevice(disk) === undefined) {
      throw new UsageError(`--disk '${o.disk}' is not a block device`);
    }
    const onDisk = <E extends { dev: DevInfo }>(s: Stream<E>) =>
      disk === undefined ? s : s.where((e, p) => e.dev.dev_statname === p.disk, { disk });
    const starts = onDisk(io.on("start"));
    // The starts of a whole disk include its partitions' sectors: their completions are
    // traced too, so that each submission finds its completion, but not printed.
    const parts = disk === undefined ? [] : partitionsOf(disk);
    const dones = parts.length === 0
      ? onDisk(io.on("done"))
      : io.on("done").where((e, p) => p.devs.includes(e.buf.b_edev), {
        devs: [sysDevice(disk!)!, ...parts],
      });

    // Submitters of the I/O in flight, by whole-disk device and sector, oldest first.
    const submitters = new Map<string, { pid: number; comm: string }[]>();
    let t0: number | undefined;
    let printed = 0;
    let skipped = 0;
    const submitted = (dev: number, sector: number, pid: number, comm: string, ns: number) => {
      t0 ??= ns;
      const key = `${dev}:${sector}`;
      const waiting = submitters.get(key);
      if (waiting) waiting.push({ pid, comm });
      else submitters.set(key, [{ pid, comm }]);
      // Front-merged requests never find their submission: forget the oldest past a bound.
      if (submitters.size > MAX_IN_FLIGHT) submitters.delete(submitters.keys().next().value!);
    };
    // block_io_start names the whole disk, at its own level: only request-based disks have it.
    const rqStarts = requestCreated();
    const part = disk === undefined ? undefined : extent(disk);
    (part === undefined ? rqStarts : rqStarts.where(
      (e, p) => e.args.dev === p.dev && e.args.sector >= p.first && e.args.sector < p.end,
      part,
    )).on((e) => submitted(e.args.dev, e.args.sector, e.pid, e.comm, e.timestampNs));
    starts.on((e) => {
      // On request-based disks io:start is the issue, which block_io_start already covered.
      if (!requestBased(e.buf.b_edev)) {
        submitted(e.buf.b_edev, e.buf.b_blkno, e.pid, e.comm, e.timestampNs);
      }
    });
    if (!o.records) {
      console.log(
        `${"TIME(s)".padEnd(11)} ${"COMM".padEnd(16)} ${"PID".padStart(7)} ${"DISK".padEnd(8)} ` +
          `${"T".padEnd(2)} ${"SECTOR".padStart(12)} ${"BYTES".padStart(8)} ` +
          `${"LAT(ms)".padStart(9)} FILE`,
      );
    }
    dones.on((e) => {
      if (e.latencyNs === undefined) {
        skipped++;
        return;
      }
      const dev = requestBased(e.buf.b_edev) ? wholeDisk(e.buf.b_edev) : e.buf.b_edev;
      const key = `${dev}:${e.buf.b_blkno}`;
      const waiting = submitters.get(key);
      const submitter = waiting?.shift();
      if (waiting?.length === 0) submitters.delete(key);
      if (parts.length && e.dev.dev_statname !== disk) return;
      t0 ??= e.timestampNs - e.latencyNs;
      const time = (e.timestampNs - t0) / 1e9;
      const rw = FLAG_LABELS[e.buf.b_flags & FLAG_MASK] ?? "-";
      printed++;
      if (o.records) {
        o.records.event("biosnoop", {
          time_s: time,
          comm: submitter?.comm ?? null,
          pid: submitter?.pid ?? null,
          disk: e.dev.dev_statname,
          rw,
          sector: e.buf.b_blkno,
          bytes: e.buf.b_bcount,
          latency_ns: e.latencyNs,
          file: e.file.fi_pathname,
          error: e.buf.b_error,
        });
        return;
      }
      console.log(
        `${time.toFixed(6).padEnd(11)} ${printable(submitter?.comm ?? "?").padEnd(16)} ` +
          `${String(submitter?.pid ?? "?").padStart(7)} ${
            printable(e.dev.dev_statname).padEnd(8)
          } ` +
          `${rw.padEnd(2)} ${String(e.buf.b_blkno).padStart(12)} ` +
          `${String(e.buf.b_bcount).padStart(8)} ${(e.latencyNs / 1e6).toFixed(3).padStart(9)} ` +
          `${printable(e.file.fi_pathname)}${e.buf.b_error ? ` (error ${e.buf.b_error})` : ""}`,
      );
    });
    return (summary) => {
      console.error(
        `biosnoop: ${printed} I/Os` +
          (skipped ? `, ${skipped} completions of I/O issued before tracing left out` : "") +
          (summary.dropped ? `, ${summary.dropped} events lost (ring buffer full)` : ""),
      );
    };
  },
});
