import { deepStrictEqual as equal, ok } from "node:assert/strict";
import {
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
    equal(dones.length, starts.length);
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
