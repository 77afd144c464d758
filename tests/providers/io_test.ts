import { deepStrictEqual as equal, ok } from "node:assert/strict";
import {
  type Aggregation,
  B,
  io,
  type IoDoneEvent,
  type IoStartEvent,
  type IoWaitDoneEvent,
  run,
} from "../../mod.ts";
import { diskstats, loopDirectIo, settleUdev, withLoopDevice } from "../../testing/loop_device.ts";
import { dropCaches, type FsType, MIN_SIZE_MIB, withFilesystem } from "../fixtures/filesystem.ts";
import { withZram } from "../fixtures/zram.ts";
import { withFullLoopDevice } from "../fixtures/full_device.ts";
import { WAIT_UNPAIRED } from "../../runtime/providers/io/wait.ts";
import { AioContext, alignedBuffer, Fd, PREAD } from "../../runtime/workload/libaio.ts";
import { bioBasedDisks } from "../../system/block_devices.ts";

const KiB = 1024;
const show = (x: unknown) => JSON.stringify(x, (_, v) => typeof v === "bigint" ? `${v}` : v);

async function sh(script: string): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stderr: "piped" }).output();
  if (!out.success) throw new Error(`${script}: ${new TextDecoder().decode(out.stderr)}`);
}

type Start = Pick<IoStartEvent, "buf" | "dev" | "file" | "comm">;

for (const fs of ["ext4", "xfs"] as FsType[]) {
  Deno.test(`io:start sees a file's buffered write, read-back and direct read on ${fs}, with its file information`, async () => {
    await withFilesystem(fs, Math.max(MIN_SIZE_MIB[fs], 64), async (m) => {
      const path = `${m.mountPoint}/dir/data.bin`;
      await Deno.mkdir(`${m.mountPoint}/dir`);
      const traced = async (work: () => Promise<void>) => {
        const seen: Start[] = [];
        // The kernel keeps only this file's I/O: a string predicate on the assembled path.
        io.on("start").where((e, p) => e.file.fi_pathname === p.path, { path })
          .on((e) => seen.push({ buf: e.buf, dev: e.dev, file: e.file, comm: e.comm }));
        // And sums bytes per file in the kernel, keyed by the path.
        const perFile = io.on("start").where((e, p) => e.dev.dev_statname === p.dev, {
          dev: m.device.name,
        }).sum((e) => e.buf.b_bcount, { by: (e) => e.file.fi_pathname });
        const stop = new AbortController();
        let attached!: () => void;
        const ready = new Promise<void>((r) => attached = r);
        const session = run({ signal: stop.signal, onAttached: attached });
        await ready;
        try {
          await work();
        } finally {
          stop.abort();
          await session;
        }
        const row = perFile.read()!.rows.find((r) => r.key[0] === path)?.value;
        equal(
          row?.kind === "sum" && row.value,
          bytes(seen),
          `the kernel's sum for the path: ${show(seen)}`,
        );
        return seen;
      };
      const bytes = (xs: Start[]) => xs.reduce((n, e) => n + e.buf.b_bcount, 0);
      const written = await traced(async () => {
        await sh(`dd if=/dev/urandom of=${path} bs=64k count=8 status=none && sync`);
        await m.unmount();
      });
      equal(bytes(written), 512 * KiB, `written: ${show(written)}`);
      for (const e of written) {
        ok(e.buf.b_flags & B.B_WRITE && e.buf.b_flags & B.B_PAGEIO, `flags ${e.buf.b_flags}`);
        ok(!(e.buf.b_flags & (B.B_READ | B.B_PHYS | B.B_ERROR)), `flags ${e.buf.b_flags}`);
        equal(e.file, {
          fi_name: "data.bin",
          fi_dirname: `${m.mountPoint}/dir`,
          fi_pathname: path,
          fi_fs: fs,
          fi_mount: m.mountPoint,
          fi_offset: e.file.fi_offset,
        });
        ok(e.file.fi_offset >= 0 && e.file.fi_offset < 512 * KiB && e.file.fi_offset % 4096 === 0);
        equal(e.dev.dev_statname, m.device.name);
        equal(e.dev.dev_pathname, m.device.path);
        equal(e.dev.dev_name, "loop");
        equal([e.dev.dev_major, e.dev.dev_minor], [m.device.major, m.device.minor]);
      }
      await m.mount();
      await dropCaches();
      const read = await traced(() => sh(`cat ${path} > /dev/null`));
      equal(bytes(read), 512 * KiB, `read: ${show(read)}`);
      for (const e of read) {
        ok(e.buf.b_flags & B.B_READ && e.buf.b_flags & B.B_PAGEIO, `flags ${e.buf.b_flags}`);
        equal([e.file.fi_pathname, e.file.fi_fs, e.file.fi_mount], [path, fs, m.mountPoint]);
      }
      // Every offset of the file was read once.
      const offsets = read.map((e) => e.file.fi_offset).sort((a, b) => a - b);
      equal(offsets[0], 0);
      // Direct I/O names the file too, from the kiocb: user memory, so B_PHYS.
      const direct = await traced(() =>
        sh(`dd if=${path} of=/dev/null bs=64k count=8 iflag=direct status=none`)
      );
      equal(bytes(direct), 512 * KiB, `direct: ${show(direct)}`);
      for (const e of direct) {
        ok(e.buf.b_flags & B.B_READ && e.buf.b_flags & B.B_PHYS, `flags ${e.buf.b_flags}`);
        equal([e.file.fi_name, e.file.fi_fs], ["data.bin", fs]);
      }
    });
  });
}

/** Traces start and done on one device while `work` runs; checks them against diskstats. */
async function checkDevice(name: string, path: string, work: () => Promise<void>) {
  // No I/O of udev's probing may be in flight when tracing starts: its start would be missed.
  await settleUdev();
  const starts: Start[] = [];
  const dones: Pick<IoDoneEvent, "latencyNs" | "buf" | "file" | "dev">[] = [];
  io.on("start").where((e, p) => e.dev.dev_statname === p.name, { name })
    .on((e) => starts.push({ buf: e.buf, dev: e.dev, file: e.file, comm: e.comm }));
  io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name })
    .on((e) => dones.push({ latencyNs: e.latencyNs, buf: e.buf, file: e.file, dev: e.dev }));
  const stop = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => attached = r);
  const session = run({ signal: stop.signal, onAttached: attached });
  await ready;
  const before = diskstats(name);
  try {
    await work();
  } finally {
    // Let the last completions land before detaching.
    await new Promise((r) => setTimeout(r, 200));
    stop.abort();
    await session;
  }
  const after = diskstats(name);
  const completed = after.readsCompleted - before.readsCompleted + after.writesCompleted -
    before.writesCompleted;
  ok(completed > 0, "the workload did I/O");
  equal(starts.length, completed, "one start per completed I/O");
  equal(dones.length, completed, "one done per completed I/O");
  const sectors = after.sectorsRead - before.sectorsRead + after.sectorsWritten -
    before.sectorsWritten;
  equal(dones.reduce((n, e) => n + e.buf.b_bcount, 0), sectors * 512, "bytes done");
  for (const e of [...starts, ...dones]) {
    equal(e.file.fi_name, "<none>");
    equal(e.dev.dev_pathname, path);
    ok(e.buf.b_flags & B.B_PHYS, `direct I/O is B_PHYS: ${e.buf.b_flags}`);
  }
  for (const d of dones) {
    ok(d.latencyNs !== undefined && d.latencyNs > 0 && d.latencyNs < 5e9, `${d.latencyNs}`);
    equal(d.buf.b_error, 0);
  }
}

Deno.test("io:start and io:done on a raw loop device match /proc/diskstats, one for one", async () => {
  await withLoopDevice(64, async (loop) => {
    await checkDevice(loop.name, loop.path, async () => {
      await sh(`dd if=/dev/urandom of=${loop.path} bs=64k count=32 oflag=direct status=none`);
      await sh(`dd if=${loop.path} of=/dev/null bs=16k count=64 iflag=direct status=none`);
    });
  });
});

Deno.test("io:start and io:done on zram, a bio-based device, match /proc/diskstats", async () => {
  await withZram(64, async (z) => {
    await checkDevice(z.name, z.path, async () => {
      await sh(`dd if=/dev/urandom of=${z.path} bs=64k count=32 oflag=direct status=none`);
      await sh(`dd if=${z.path} of=/dev/null bs=16k count=64 iflag=direct status=none`);
    });
  });
});

/** The major and minor numbers of the device node at `path` (glibc's encoding of dev_t). */
function nodeNumbers(path: string): [number, number] {
  const rdev = BigInt(Deno.statSync(path).rdev ?? 0);
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

Deno.test("flush requests name their disk, and every record's device agrees with /dev", async () => {
  await withLoopDevice(64, async (loop) => {
    await settleUdev();
    type Seen = { dev: IoStartEvent["dev"]; flags: number };
    const starts: Seen[] = [];
    const dones: Seen[] = [];
    io.on("start", (e) => starts.push({ dev: e.dev, flags: e.buf.b_flags }));
    io.on("done", (e) => dones.push({ dev: e.dev, flags: e.buf.b_flags }));
    const stop = new AbortController();
    let attached!: () => void;
    const ready = new Promise<void>((r) => attached = r);
    const session = run({ signal: stop.signal, onAttached: attached });
    await ready;
    const before = diskstats(loop.name);
    try {
      // Each fsync of the block device sends it a flush: it caches writes ("write back").
      for (let i = 0; i < 4; i++) {
        await sh(
          `dd if=/dev/zero of=${loop.path} bs=64k count=4 oflag=direct conv=fsync status=none`,
        );
      }
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      stop.abort();
      await session;
    }
    const flushes = diskstats(loop.name).flushesCompleted - before.flushesCompleted;
    ok(flushes > 0, "the loop device was flushed");
    const isFlush = (r: Seen) => !(r.flags & (B.B_READ | B.B_WRITE));
    const mine = (rs: Seen[]) => rs.filter((r) => r.dev.dev_statname === loop.name && isFlush(r));
    equal([mine(starts).length, mine(dones).length], [flushes, flushes], "flushes, by device name");
    const nodes = new Map<string, [number, number]>();
    for (const r of [...starts, ...dones]) {
      const name = r.dev.dev_statname;
      ok(name !== "", `a record without a device: ${show(r)}`);
      if (!nodes.has(name)) nodes.set(name, nodeNumbers(`/dev/${name}`));
      equal([r.dev.dev_major, r.dev.dev_minor], nodes.get(name), show(r));
      equal(r.dev.dev_pathname, `/dev/${name}`);
    }
  });
});

/** Runs `work` while `setup`'s consumers trace system-wide; returns the session's summary. */
async function traced(setup: () => void, work: () => Promise<void>, traceSelf?: boolean) {
  setup();
  const stop = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => attached = r);
  const session = run({
    signal: stop.signal,
    onAttached: attached,
    traceSelf,
    printAggregations: false,
  });
  await ready;
  try {
    await work();
  } finally {
    // Let the last completions land before detaching.
    await new Promise((r) => setTimeout(r, 200));
    stop.abort();
  }
  return await session;
}

Deno.test("io:done times every request of a deep queue, system-wide: none unknown, none longer than fio saw it", async () => {
  await withLoopDevice(64, async (loop) => {
    await settleUdev();
    const out = await Deno.makeTempFile();
    let stats: Aggregation | undefined;
    const before = diskstats(loop.name);
    try {
      const summary = await traced(() => {
        stats = io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name: loop.name })
          .stats((e) => e.latencyNs!);
      }, async () => {
        const fio = new Deno.Command("fio", {
          args: [
            "--name=deep",
            `--filename=${loop.path}`,
            "--rw=randread",
            "--bs=4k",
            "--iodepth=128",
            "--ioengine=libaio",
            "--direct=1",
            "--number_ios=16384",
            "--output-format=json",
            `--output=${out}`,
          ],
        });
        equal((await fio.output()).code, 0, "fio succeeded");
      });
      const completed = diskstats(loop.name).readsCompleted - before.readsCompleted;
      const fio = JSON.parse(await Deno.readTextFile(out)).jobs[0].read;
      equal(fio.total_ios, 16384, "fio read every block once");
      const value = stats!.read()!.rows[0].value;
      ok(value.kind === "stats");
      equal(value.value.count, completed, "every read the disk completed, timed");
      equal(summary.counters["aggregations.unknown"], 0, "none without its issue");
      ok(value.value.min > 0, `min ${value.value.min}`);
      // Issue to completion is inside fio's submit to reap.
      const mean = value.value.sum / value.value.count;
      ok(mean <= fio.clat_ns.mean * 1.05, `mean ${mean} ns, fio's clat ${fio.clat_ns.mean}`);
    } finally {
      await Deno.remove(out);
    }
  });
});

Deno.test("system-wide io:done leaves out the tracer's own I/O, and keeps it with traceSelf", async () => {
  await withLoopDevice(16, async (loop) => {
    await settleUdev();
    const READS = 64;
    /**
     * The reads of this process's own direct I/O and then dd's: their count, and with `byPid`
     * this process's and the others' (reading pid keeps every submitter; a count alone only
     * marks the tracer's I/O).
     */
    const seen = async (traceSelf: boolean, byPid: boolean) => {
      let counts: Aggregation | undefined;
      let starts: Aggregation | undefined;
      await traced(() => {
        const params = { name: loop.name };
        const done = io.on("done").where((e, p) => e.dev.dev_statname === p.name, params);
        counts = byPid ? done.count((e) => e.pid) : done.count();
        starts = io.on("start").where((e, p) => e.dev.dev_statname === p.name, params).count();
      }, async () => {
        using f = new Fd(loop.path, { direct: true });
        using ctx = new AioContext(1);
        const buf = alignedBuffer(4096);
        for (let i = 0; i < READS; i++) {
          ctx.submit([{
            opcode: PREAD,
            fd: f.fd,
            buf: buf.address,
            nbytes: 4096,
            offset: 4096 * i,
            data: 0n,
          }]);
          equal(ctx.reap(1, 1).length, 1);
        }
        await sh(`dd if=${loop.path} of=/dev/null bs=4k count=${READS} iflag=direct status=none`);
      }, traceSelf);
      const rows = counts!.read()!.rows;
      const n = (keep: (pid: unknown) => boolean) =>
        rows.filter((r) => keep(r.key[0]))
          .reduce((n, r) => n + (r.value.kind === "count" ? r.value.value : 0), 0);
      const started = starts!.read()!.rows[0]?.value;
      equal(started?.kind === "count" && started.value, n(() => true), "as many starts");
      if (!byPid) return { all: n(() => true) };
      return { own: n((pid) => pid === Deno.pid), others: n((pid) => pid !== Deno.pid) };
    };
    equal(await seen(false, false), { all: READS }, "marked, left out");
    equal(await seen(true, false), { all: 2 * READS }, "kept");
    equal(await seen(false, true), { own: 0, others: READS }, "by submitter, left out");
    equal(await seen(true, true), { own: READS, others: READS }, "by submitter, kept");
  });
});

Deno.test("a bio-based disk added while io:done traces every disk is traced, or counted as untraced", async () => {
  // Without a bio-based disk at load, no program runs on every bio to find one.
  const atLoad = bioBasedDisks().length > 0;
  let byDisk: Aggregation | undefined;
  let name = "";
  let completed = 0;
  const summary = await traced(() => {
    byDisk = io.on("done").count((e) => e.dev.dev_statname);
  }, async () => {
    await withZram(16, async (z) => {
      name = z.name;
      const before = diskstats(z.name);
      await sh(`dd if=/dev/urandom of=${z.path} bs=64k count=16 oflag=direct status=none`);
      const after = diskstats(z.name);
      completed = after.writesCompleted - before.writesCompleted;
      // Disks are looked for about once a second.
      await new Promise((r) => setTimeout(r, 1500));
    });
  });
  ok(completed > 0, "the zram device was written");
  const row = byDisk!.read()!.rows.find((r) => r.key[0] === name)?.value;
  const traced_ = row?.kind === "count" ? row.value : 0;
  if (atLoad) equal(traced_, completed, "every write traced");
  else {
    equal(traced_, 0);
    ok(summary.counters["io.untraced_disks"] >= 1, show(summary.counters));
    ok(summary.losses.some((l) => l.includes("io.untraced_disks")), show(summary.losses));
  }
});

Deno.test("a failed write is io:done with B_ERROR, the errno, and b_resid equal to b_bcount", async () => {
  await withFullLoopDevice(async ({ device }) => {
    const dones: IoDoneEvent["buf"][] = [];
    io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name: device.name })
      .on((e) => dones.push(e.buf));
    await run({
      command: [
        "sh",
        "-c",
        `dd if=/dev/zero of=${device.path} bs=1M count=16 oflag=direct status=none; true`,
      ],
    });
    const failed = dones.filter((b) => b.b_flags & B.B_ERROR);
    ok(failed.length > 0, `no failed done among ${dones.length}`);
    // ENOSPC as the backing tmpfs reports it, where the loop device does direct I/O to it
    // (Linux 6.6+); EIO where it cannot.
    const errno = loopDirectIo(device.name) ? 28 : 5;
    for (const b of failed) {
      equal(b.b_error, errno);
      ok(b.b_flags & B.B_WRITE);
      // DTrace's b_resid: the bytes not transferred, which for a failed request is all.
      equal(b.b_resid, b.b_bcount, "a failed request moved nothing");
      ok(b.b_bcount > 0);
    }
    ok(dones.some((b) => !(b.b_flags & B.B_ERROR) && b.b_error === 0), "the first 4 MiB succeeded");
  });
});

Deno.test("synchronous reads give paired io:wait-start and io:wait-done in the same thread", async () => {
  await withLoopDevice(32, async (loop) => {
    const starts: number[] = [];
    const dones: { tid: number; waitNs: number }[] = [];
    io.on("wait-start").where((e) => e.comm === "dd").on((e) => starts.push(e.tid));
    io.on("wait-done").where((e) => e.comm === "dd").on((e) =>
      dones.push({ tid: e.tid, waitNs: e.waitNs })
    );
    const summary = await run({
      command: ["dd", `if=${loop.path}`, "of=/dev/null", "bs=4k", "count=200", "iflag=direct"],
    });
    equal(summary.commandExitCode, 0);
    // Nearly every direct read waits; one that completes before its reader sleeps does not.
    ok(starts.length >= 180, `${starts.length} waits for 200 direct reads`);
    // A switch-in that reaches no sched_switch program (about 1 in 40,000 on 6.18: see
    // wait.ts) leaves a wait unpaired; only a later start of the thread could count it.
    ok(
      dones.length <= starts.length && starts.length - dones.length <= 1,
      `${dones.length} wait-dones for ${starts.length} wait-starts`,
    );
    equal(new Set(dones.map((d) => d.tid)), new Set(starts));
    for (const d of dones) ok(d.waitNs > 0 && d.waitNs < 1e9, `waitNs ${d.waitNs}`);
  });
});

Deno.test("io:wait-start and io:wait-done pair per thread under direct reads from 8 threads; unpaired starts are counted", async () => {
  await withLoopDevice(64, async (loop) => {
    const starts = new Map<number, number>();
    const dones = new Map<number, number>();
    const add = (m: Map<number, number>, tid: number) => m.set(tid, (m.get(tid) ?? 0) + 1);
    io.on("wait-start", (e) => add(starts, e.tid));
    io.on("wait-done", (e) => add(dones, e.tid));
    const summary = await run({
      command: [
        "fio",
        "--name=waits",
        `--filename=${loop.path}`,
        "--rw=randread",
        "--bs=4k",
        "--ioengine=psync",
        "--direct=1",
        "--thread",
        "--numjobs=8",
        "--number_ios=500",
        "--output=/dev/null",
      ],
    });
    equal(summary.commandExitCode, 0);
    const total = [...starts.values()].reduce((n, c) => n + c, 0);
    ok(starts.size >= 8 && total >= 8 * 400, `${total} waits in ${starts.size} threads`);
    let unpaired = 0;
    for (const [tid, n] of starts) {
      const d = dones.get(tid) ?? 0;
      ok(d <= n, `thread ${tid}: ${d} wait-done for ${n} wait-start`);
      unpaired += n - d;
    }
    equal(dones.size, starts.size, "every waiting thread resumed");
    equal(summary.counters[WAIT_UNPAIRED], unpaired, "wait-starts without wait-done, counted");
  });
});

Deno.test("waits carry the I/O the thread submitted: direct reads of a file on ext4", async () => {
  await withFilesystem("ext4", 64, async (m) => {
    const path = `${m.mountPoint}/waited.bin`;
    await sh(`dd if=/dev/urandom of=${path} bs=64k count=4 status=none && sync`);
    const waits: Pick<IoWaitDoneEvent, "waitNs" | "buf" | "file" | "dev">[] = [];
    io.on("wait-done").where((e) => e.comm === "dd").on((e) =>
      waits.push({ waitNs: e.waitNs, buf: e.buf, file: e.file, dev: e.dev })
    );
    const summary = await run({
      command: ["dd", `if=${path}`, "of=/dev/null", "bs=4k", "count=64", "iflag=direct"],
    });
    equal(summary.commandExitCode, 0);
    const ours = waits.filter((w) => w.file.fi_pathname === path);
    ok(ours.length >= 60, `${ours.length} of ${waits.length} waits name the file`);
    for (const w of ours) {
      equal([w.buf.b_bcount, w.dev.dev_statname, w.file.fi_fs], [4096, m.device.name, "ext4"]);
      ok(w.buf.b_flags & B.B_READ && w.buf.b_flags & B.B_PHYS, `flags ${w.buf.b_flags}`);
      ok(w.file.fi_offset >= 0 && w.file.fi_offset < 256 * KiB);
    }
  });
});
