/**
 * The io recipes (biolatency, biosnoop, iotop, iowait) run as a user runs them, as
 * subprocesses, against workloads whose I/O is known: direct I/O with dd on a private loop
 * device, checked against what dd did and against /proc/diskstats.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import type { TableRecord } from "../../mod.ts";
import { diskstats, type LoopDevice, withLoopDevice } from "../../testing/loop_device.ts";
import { withZram, type ZramDevice } from "../fixtures/zram.ts";
import { withFilesystem } from "../fixtures/filesystem.ts";
import { eventsOf, parseRecords, tableOf } from "../fixtures/records.ts";
import { recipe } from "../fixtures/subprocess.ts";

const KiB = 1024;

/**
 * Runs `name` with `args` (--json, or --format ndjson), failing with its stderr on a bad exit;
 * its records, valid against the schema and all written by `name`, with readers of its tables
 * and events.
 */
async function json(name: string, ...args: string[]) {
  const out = await recipe(name, ...args);
  equal(out.code, 0, out.stderr);
  const format = args.includes("ndjson") ? "ndjson" : "json";
  const records = parseRecords(out.stdout, format);
  ok(records.every((r) => r.source === name), out.stdout);
  return {
    out,
    records,
    /** The one table `table` of the whole run. */
    table: <Row>(table: string) => tableOf<Row>(out.stdout, format, table),
    /** The data of the events named `event`. */
    events: <Data>(event: string) => eventsOf<Data>(out.stdout, format, event),
  };
}

/** Reads and writes completed on the device while `work` runs. */
async function completed(dev: { name: string }, work: () => Promise<void>) {
  const before = diskstats(dev.name);
  await work();
  const after = diskstats(dev.name);
  return {
    reads: after.readsCompleted - before.readsCompleted,
    writes: after.writesCompleted - before.writesCompleted,
  };
}

/** The pid of the command a recipe traced, which printed it on stderr (`echo $$ >&2; exec`). */
function tracedPid(stderr: string): number {
  const line = stderr.split("\n").find((l) => /^\d+$/.test(l.trim()));
  ok(line, `no pid on stderr: ${stderr}`);
  return Number(line);
}

/** Files the demo workloads left under /var/tmp (they must leave none). */
function leftovers(prefix: string): string[] {
  return [...Deno.readDirSync("/var/tmp")].map((e) => e.name)
    .filter((n) => n.startsWith(`${prefix}.`));
}

async function run(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A partition of a loop device: its name ("loop3p1"), a device node, its first sector. */
interface Partition {
  name: string;
  path: string;
  start: number;
}

/**
 * Runs `fn` with one partition on `dev`, from sector 2048 to the end: an MBR written on the
 * device and added with partx (the fixture's loop devices do not scan partitions). Without
 * udev there is no /dev node, so one is made in a temporary directory. The partition is
 * deleted afterwards, and the node.
 */
async function withPartition<T>(
  dev: LoopDevice,
  sizeMiB: number,
  fn: (p: Partition) => Promise<T>,
): Promise<T> {
  const start = 2048;
  const mbr = new Uint8Array(512);
  const view = new DataView(mbr.buffer);
  mbr[446 + 4] = 0x83; // Linux
  view.setUint32(446 + 8, start, true);
  view.setUint32(446 + 12, sizeMiB * 2048 - start, true);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  {
    using f = await Deno.open(dev.path, { write: true });
    await f.write(mbr);
    await f.sync();
  }
  await run("partx", "-a", dev.path);
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-part-" });
  try {
    const name = `${dev.name}p1`;
    const [major, minor] = (await Deno.readTextFile(`/sys/class/block/${name}/dev`)).trim()
      .split(":");
    const path = `${dir}/${name}`;
    await run("mknod", path, "b", major, minor);
    return await fn({ name, path, start });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await run("partx", "-d", dev.path);
  }
}

const OPTIONS: Record<string, string[]> = {
  biolatency: ["--disk", "--flags", "--queued"],
  biosnoop: ["--disk"],
  iotop: ["--top", "--disk"],
  iowait: ["--top"],
};
const COMMON = ["--pid", "--command", "--all", "--duration", "--interval", "--json", "--help"];

for (const [name, own] of Object.entries(OPTIONS)) {
  Deno.test(`${name} --help lists its options and the common ones`, async () => {
    const r = await recipe(name, "--help");
    equal(r.code, 0, r.stderr);
    ok(r.stdout.startsWith(`usage: ${name} [options]`), r.stdout);
    for (const o of [...COMMON, ...own]) ok(r.stdout.includes(o), `${o} in ${r.stdout}`);
    ok(r.stdout.includes("demo workload"), r.stdout);
  });
}

const USAGE_ERRORS: Array<[string, string[], string]> = [
  ["biolatency", ["--disk", "nosuchdisk9"], "--disk 'nosuchdisk9' is not a block device"],
  ["biolatency", ["--flag"], "Unknown option '--flag'"],
  ["biosnoop", ["--disk"], "--disk"],
  ["iotop", ["--top", "0"], "--top '0' is not a number >= 1"],
  ["iotop", ["--top", "2.5"], "--top '2.5' is not a whole number"],
  ["iowait", ["-p", "1", "-a"], "give at most one of"],
];
for (const [name, args, message] of USAGE_ERRORS) {
  Deno.test(`${name} ${args.join(" ")}: one line on stderr, exit code 2`, async () => {
    const r = await recipe(name, ...args);
    equal(r.code, 2, r.stderr);
    equal(r.stdout, "");
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(r.stderr.startsWith(`${name}: `) && r.stderr.includes(message), r.stderr);
  });
}

/** A histogram in microseconds, summed up, as the latency recipes' rows hold it. */
interface Histogram {
  count: number;
  mean_us: number;
  p50_us: number;
  p99_us: number;
  min_us: number;
  max_us: number;
  buckets: { low: number | null; high: number | null; count: number }[];
}

interface LatencyGroup extends Histogram {
  disk: string;
  flags?: string;
}

/** What every histogram group must satisfy, whatever the workload. */
function checkGroup(g: LatencyGroup): void {
  equal(g.buckets.reduce((n, b) => n + b.count, 0), g.count, "buckets add up to the count");
  ok(g.min_us <= g.mean_us && g.mean_us <= g.max_us, JSON.stringify(g));
  ok(g.min_us <= g.p50_us && g.p50_us <= g.p99_us && g.p99_us <= g.max_us, JSON.stringify(g));
  ok(g.max_us < 5e6, `no I/O of a loop device takes 5 s: ${g.max_us}`);
}

/** 32 direct 64 KiB writes, then 64 direct 16 KiB reads: 96 requests. */
const mixed = (dev: LoopDevice) =>
  `dd if=/dev/urandom of=${dev.path} bs=64k count=32 oflag=direct status=none && ` +
  `dd if=${dev.path} of=/dev/null bs=16k count=64 iflag=direct status=none`;

Deno.test("biolatency counts every I/O of the disk once, as /proc/diskstats does", async () => {
  await withLoopDevice(64, async (dev) => {
    let out!: Awaited<ReturnType<typeof json>>;
    const done = await completed(dev, async () => {
      out = await json("biolatency", "-c", mixed(dev), "--disk", dev.name, "--json");
    });
    equal(done, { reads: 64, writes: 32 });
    const report = out.table<LatencyGroup>("disks");
    equal(report.summary, { unit: "us", measured: "issue", lost: 0 });
    equal(report.rows.map((g) => [g.disk, g.count]), [[dev.name, 96]]);
    checkGroup(report.rows[0]);
  });
});

Deno.test("biolatency --flags --queued splits reads and writes, timed from the request's creation", async () => {
  await withLoopDevice(64, async (dev) => {
    let out!: Awaited<ReturnType<typeof json>>;
    const done = await completed(dev, async () => {
      out = await json(
        "biolatency",
        "-c",
        mixed(dev),
        "--disk",
        dev.name,
        "--json",
        "--flags",
        "--queued",
      );
    });
    equal(done, { reads: 64, writes: 32 });
    const report = out.table<LatencyGroup>("disks");
    equal(report.summary?.measured, "queued");
    // Smallest count first.
    equal(report.rows.map((g) => [g.disk, g.flags, g.count]), [
      [dev.name, "W", 32],
      [dev.name, "R", 64],
    ]);
    report.rows.forEach(checkGroup);
  });
});

Deno.test("biolatency prints a histogram and a summary line per disk", async () => {
  await withLoopDevice(64, async (dev) => {
    const r = await recipe("biolatency", "-c", mixed(dev), "--disk", dev.name);
    equal(r.code, 0, r.stderr);
    ok(r.stdout.startsWith(`@usecs[${dev.name}]:\n`), r.stdout);
    ok(/^\[\d+K?, \d+K?\)\s+\d+ \|@+ *\|$/m.test(r.stdout), r.stdout);
    ok(
      /^count 96, mean [\d.]+ (us|ms), p50 [\d.]+ (us|ms), p99 [\d.]+ (us|ms), max [\d.]+ (us|ms)$/m
        .test(r.stdout),
      r.stdout,
    );
  });
});

interface SnoopLine {
  time_s: number;
  comm: string | null;
  pid: number | null;
  disk: string;
  rw: string;
  sector: number;
  bytes: number;
  latency_ns: number;
  file: string;
  error: number;
}

Deno.test("biosnoop prints one line per I/O, with the submitting process, disk, sector and size", async () => {
  await withLoopDevice(64, async (dev) => {
    const work = `echo $$ >&2; exec dd if=/dev/urandom of=${dev.path} bs=64k count=16 ` +
      `oflag=direct status=none`;
    let out!: Awaited<ReturnType<typeof json>>;
    const done = await completed(dev, async () => {
      out = await json("biosnoop", "-c", work, "--disk", dev.name, "--json");
    });
    equal(done, { reads: 0, writes: 16 });
    const pid = tracedPid(out.out.stderr);
    const lines = out.events<SnoopLine>("biosnoop");
    equal(lines.length, 16, out.out.stdout);
    lines.forEach((l, i) => {
      const { time_s, latency_ns, ...rest } = l;
      equal(rest, {
        comm: "dd",
        pid,
        disk: dev.name,
        rw: "W",
        sector: 128 * i, // dd writes in order, 64 KiB (128 sectors) apart
        bytes: 64 * KiB,
        file: "<none>", // a raw device has no file
        error: 0,
      });
      ok(latency_ns > 0 && latency_ns < 5e9, `latency ${latency_ns}`);
      ok(time_s >= 0 && (i === 0 || time_s >= lines[i - 1].time_s), `time ${time_s}`);
    });
    ok(out.out.stderr.includes("biosnoop: 16 I/Os"), out.out.stderr);
  });
});

Deno.test("biosnoop's text lines name the reader and the read", async () => {
  await withLoopDevice(64, async (dev) => {
    const work = `echo $$ >&2; exec dd if=${dev.path} of=/dev/null bs=4k count=8 iflag=direct ` +
      `status=none`;
    const r = await recipe("biosnoop", "-c", work, "--disk", dev.name);
    equal(r.code, 0, r.stderr);
    const pid = tracedPid(r.stderr);
    const [head, ...lines] = r.stdout.trimEnd().split("\n");
    ok(/^TIME\(s\)\s+COMM\s+PID\s+DISK\s+T\s+SECTOR\s+BYTES\s+LAT\(ms\)\s+FILE$/.test(head), head);
    equal(lines.length, 8, r.stdout);
    lines.forEach((line, i) => {
      const f = line.trim().split(/\s+/);
      equal([f[1], f[2], f[3], f[4], f[5], f[6], f[8]], [
        "dd",
        String(pid),
        dev.name,
        "R",
        String(8 * i),
        "4096",
        "<none>",
      ]);
      ok(Number(f[7]) >= 0 && Number(f[7]) < 5000, line);
    });
  });
});

Deno.test("biolatency --queued and biosnoop on a partition: paired by the partition's sectors on its disk", async () => {
  await withLoopDevice(64, async (dev) => {
    await withPartition(dev, 64, async (part) => {
      // 16 writes to the partition, 4 reads of the whole disk's first sectors (its table).
      const work = `echo $$ >&2; exec sh -c 'dd if=/dev/zero of=${part.path} bs=64k count=16 ` +
        `oflag=direct status=none; dd if=${dev.path} of=/dev/null bs=4k count=4 iflag=direct ` +
        `status=none'`;
      const all = (await json("biolatency", "-c", work, "--json", "--queued"))
        .table<LatencyGroup>("disks");
      const counts = (g: LatencyGroup[]) => g.map((x) => [x.disk, x.count]);
      equal(
        counts(all.rows.filter((g) => g.disk.startsWith(dev.name))),
        [[dev.name, 4], [part.name, 16]],
      );
      all.rows.forEach(checkGroup);
      for (const [disk, count] of [[part.name, 16], [dev.name, 4]] as const) {
        const one = await json(
          "biolatency",
          "-c",
          work,
          "--json",
          "--queued",
          "--disk",
          disk,
        );
        equal(counts(one.table<LatencyGroup>("disks").rows), [[disk, count]]);
      }
      const snoop = await json("biosnoop", "-c", work, "--json", "--disk", part.name);
      const snooped = snoop.events<SnoopLine>("biosnoop");
      equal(snooped.length, 16, snoop.out.stdout);
      snooped.forEach((l, i) => {
        equal([l.comm, l.disk, l.rw, l.sector, l.bytes], [
          "dd",
          part.name,
          "W",
          part.start + 128 * i,
          64 * KiB,
        ]);
        ok(l.pid !== null && l.pid !== tracedPid(snoop.out.stderr), "dd, a child of the shell");
      });
      // The whole disk: its own I/O only, its submitter known although its partition's
      // requests start on it too.
      const whole = await json("biosnoop", "-c", work, "--json", "--disk", dev.name);
      equal(
        whole.events<SnoopLine>("biosnoop").map((l) => [l.comm, l.disk, l.rw, l.sector]),
        [0, 8, 16, 24].map((s) => ["dd", dev.name, "R", s]),
      );
    });
  });
});

Deno.test("biolatency --queued and biosnoop on zram, a bio-based device", async () => {
  await withZram(64, async (z: ZramDevice) => {
    const work = `echo $$ >&2; exec dd if=/dev/urandom of=${z.path} bs=64k count=16 ` +
      `oflag=direct status=none`;
    let lat!: Awaited<ReturnType<typeof json>>;
    const done = await completed(z, async () => {
      lat = await json("biolatency", "-c", work, "--disk", z.name, "--json", "--queued");
    });
    ok(done.writes >= 16, `${done.writes} writes`);
    const groups = lat.table<LatencyGroup>("disks").rows;
    equal(groups.map((g) => [g.disk, g.count]), [[z.name, done.writes + done.reads]]);
    checkGroup(groups[0]);
    let snoop!: Awaited<ReturnType<typeof json>>;
    const again = await completed(z, async () => {
      snoop = await json("biosnoop", "-c", work, "--disk", z.name, "--json");
    });
    const pid = tracedPid(snoop.out.stderr);
    const lines = snoop.events<SnoopLine>("biosnoop");
    equal(lines.length, again.writes + again.reads);
    equal(lines.reduce((n, l) => n + l.bytes, 0), 16 * 64 * KiB);
    for (const l of lines) equal([l.comm, l.pid, l.disk, l.rw], ["dd", pid, z.name, "W"]);
  });
});

interface Totals {
  ios: number;
  read_bytes: number;
  write_bytes: number;
  other_bytes: number;
  bytes: number;
}
type TopProcess = { pid: number; comm: string } & Totals;
type TopFile = { disk: string; file: string } & Totals;

Deno.test("iotop gives each process and file the bytes it read and wrote", async () => {
  await withLoopDevice(64, async (dev) => {
    // A writer, then a reader with its own pid; one file: the raw device.
    const work = `dd if=/dev/zero of=${dev.path} bs=64k count=16 oflag=direct status=none && ` +
      `sh -c 'echo $$ >&2; exec dd if=${dev.path} of=/dev/null bs=16k count=32 iflag=direct ` +
      `status=none'`;
    const { table, out } = await json("iotop", "-c", work, "--disk", dev.name, "--json");
    const reader = tracedPid(out.stderr);
    const [processes, files] = [table<TopProcess>("processes"), table<TopFile>("files")];
    equal([processes.summary, files.summary], [{ lost: 0 }, { lost: 0 }]);
    const [writer, read] = processes.rows;
    equal(processes.rows.length, 2);
    equal({ ...writer, pid: 0 }, {
      pid: 0,
      comm: "dd",
      ios: 16,
      read_bytes: 0,
      write_bytes: 1024 * KiB,
      other_bytes: 0,
      bytes: 1024 * KiB,
    });
    equal(read, {
      pid: reader,
      comm: "dd",
      ios: 32,
      read_bytes: 512 * KiB,
      write_bytes: 0,
      other_bytes: 0,
      bytes: 512 * KiB,
    });
    ok(writer.pid !== reader);
    equal(files.rows, [{
      disk: dev.name,
      file: "<none>",
      ios: 48,
      read_bytes: 512 * KiB,
      write_bytes: 1024 * KiB,
      other_bytes: 0,
      bytes: 1536 * KiB,
    }]);
  });
});

Deno.test("iotop -i prints each interval's I/O once; --top keeps the largest", async () => {
  await withLoopDevice(64, async (dev) => {
    const work = `dd if=/dev/zero of=${dev.path} bs=64k count=16 oflag=direct status=none; ` +
      `sleep 0.5; dd if=${dev.path} of=/dev/null bs=4k count=64 iflag=direct status=none`;
    const { records } = await json(
      "iotop",
      "-c",
      work,
      "--disk",
      dev.name,
      "--format",
      "ndjson",
      "-i",
      "100ms",
      "--top",
      "1",
    );
    const tables = (name: string) =>
      records.filter((r): r is TableRecord => r.type === "table" && r.name === name);
    const [processes, files] = [tables("processes"), tables("files")];
    // A pair each interval (1, 2, ...), the last one what was left at the end.
    const intervals = processes.map((t) => t.interval);
    equal(intervals, intervals.map((_, i) => i + 1));
    equal(files.map((t) => t.interval), intervals);
    ok(intervals.length >= 3, `${intervals.length} prints in more than 0.5 s`);
    ok([...processes, ...files].every((t) => t.rows.length <= 1));
    const sum = (key: keyof Totals) =>
      processes.reduce((n, t) => n + t.rows.reduce((m, p) => m + Number(p[key]), 0), 0);
    // The writer and the reader never share an interval: 0.5 s apart.
    equal([sum("write_bytes"), sum("read_bytes"), sum("ios")], [1024 * KiB, 256 * KiB, 80]);
    ok(processes.some((t) => t.rows.length === 0), "an interval in the sleep has no I/O");
  });
});

interface Waiter extends Histogram {
  comm: string;
  pid: number;
  total_us: number;
}

Deno.test("iowait: a dd doing direct reads waits about once per read, for no longer than it ran", async () => {
  await withLoopDevice(32, async (dev) => {
    const work = `echo $$ >&2; exec dd if=${dev.path} of=/dev/null bs=4k count=200 iflag=direct ` +
      `status=none`;
    const { table, out } = await json("iowait", "-c", work, "--json");
    const pid = tracedPid(out.stderr);
    const report = table<Waiter>("processes");
    equal(report.summary?.unit, "us");
    const dd = report.rows.find((p) => p.comm === "dd");
    ok(dd, out.stdout);
    equal(dd.pid, pid);
    // Each read is a wait, unless it completed before its reader got to io_schedule() (rare
    // on a loop device, whose worker does the read), and seldom more than one.
    ok(dd.count >= 180 && dd.count <= 400, `${dd.count} waits for 200 direct reads`);
    equal(dd.buckets.reduce((n, b) => n + b.count, 0), dd.count);
    ok(dd.min_us <= dd.p50_us && dd.p50_us <= dd.p99_us && dd.p99_us <= dd.max_us);
    ok(dd.max_us < 1e6, `max ${dd.max_us}`);
    ok(dd.total_us * 1000 < out.elapsedMs * 1e6, `${dd.total_us} us waited in ${out.elapsedMs} ms`);
    // Only the traced command: dd, and the shell that exec'd it, with the same pid.
    ok(report.rows.every((p) => p.pid === pid), out.stdout);
  });
});

Deno.test("iowait prints a histogram and a summary line per process", async () => {
  await withLoopDevice(32, async (dev) => {
    const work = `dd if=${dev.path} of=/dev/null bs=4k count=100 iflag=direct status=none`;
    const r = await recipe("iowait", "-c", work);
    equal(r.code, 0, r.stderr);
    ok(/^@wait_usecs\[dd, \d+\]:$/m.test(r.stdout), r.stdout);
    ok(/^count \d+, total [\d.]+ (us|ms|s), mean [\d.]+ (us|ms), p50 /m.test(r.stdout), r.stdout);
  });
});

Deno.test("with --demo, each recipe traces its demo workload and leaves no file behind", async () => {
  const bio = await json("biolatency", "--demo", "--json");
  const all = bio.table<LatencyGroup>("disks").rows.reduce((n, g) => n + g.count, 0);
  // 512 writes and 2048 reads, and the filesystem's metadata. Not exact: on a filesystem
  // some of dd's writes are at times submitted by a kernel worker, and so are not the demo's.
  ok(all >= 2000, `biolatency demo: ${all} I/Os`);

  const snoop = await json("biosnoop", "--demo", "--format", "ndjson");
  const dd = snoop.events<SnoopLine>("biosnoop").filter((l) => l.comm === "dd");
  // Of the demo file: dd's other I/O (an inode read at open) names no file.
  const bytes = (rw: string) =>
    dd.filter((l) => l.rw === rw && l.file !== "<none>").reduce((n, l) => n + l.bytes, 0);
  // 8 writes of 64 KiB and 8 reads of 4 KiB (but see biolatency's above).
  ok(bytes("W") > 0 && bytes("W") <= 512 * KiB, snoop.out.stdout);
  ok(bytes("R") > 0 && bytes("R") <= 32 * KiB, snoop.out.stdout);
  // dd's own I/O names its file; metadata it causes (an inode read at open) has none.
  ok(dd.some((l) => l.file.startsWith("/var/tmp/biosnoop.")), snoop.out.stdout);
  ok(
    dd.every((l) => l.file.startsWith("/var/tmp/biosnoop.") || l.file === "<none>"),
    snoop.out.stdout,
  );

  // iotop names io:start's task, which on a busy disk with an I/O scheduler may be the one
  // that dispatched the request: the demo's numbers are exact only on an idle disk.
  const top = await json("iotop", "--demo", "--json");
  const writer = top.table<TopProcess>("processes").rows
    .find((p) => p.comm === "dd" && p.write_bytes);
  ok(writer && writer.write_bytes <= 4096 * KiB, top.out.stdout);
  ok(
    top.table<TopFile>("files").rows.some((f) => f.file.startsWith("/var/tmp/iotop.")),
    top.out.stdout,
  );

  const wait = await json("iowait", "--demo", "--json");
  ok(
    wait.table<Waiter>("processes").rows.some((p) => p.comm === "dd" && p.count > 512),
    wait.out.stdout,
  );

  for (const prefix of ["biolatency", "biosnoop", "iotop", "iowait"]) {
    equal(leftovers(prefix), [], `${prefix} demo files left in /var/tmp`);
  }
});

Deno.test("iowait --files names the file waited on: direct reads of a file on ext4", async () => {
  await withFilesystem("ext4", 64, async (m) => {
    const path = `${m.mountPoint}/waited.bin`;
    await run("sh", "-c", `dd if=/dev/zero of=${path} bs=64k count=16 status=none && sync`);
    const { table, out } = await json(
      "iowait",
      "--files",
      "--json",
      "-c",
      `dd if=${path} of=/dev/null bs=4k count=256 iflag=direct status=none`,
    );
    const files = table<{ comm: string; file: string; count: number }>("files");
    const dd = files.rows.filter((f) => f.comm === "dd" && f.file === path);
    ok(dd.length === 1 && dd[0].count >= 100, out.stdout);
  });
});
