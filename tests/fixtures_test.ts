/**
 * Tests of the block-device fixtures themselves (filesystem, zram, full loop device): each
 * gives what it promises and leaves nothing behind in `losetup -a`, /proc/mounts, /sys/block
 * or /tmp, also when the test's `fn` throws.
 */
import {
  deepStrictEqual as assertEquals,
  match,
  notStrictEqual,
  ok as assert,
  rejects,
} from "node:assert/strict";
import { diskstats, loopDirectIo } from "../testing/loop_device.ts";
import { dropCaches, type FsType, type MountedFs, withFilesystem } from "./fixtures/filesystem.ts";
import { withZram } from "./fixtures/zram.ts";
import { withFullLoopDevice } from "./fixtures/full_device.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Bytes that are neither zero nor page-uniform, so no driver can short-cut storing them. */
function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 12)) & 255);
}

async function sh(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function losetupAll(): Promise<string> {
  const out = await new Deno.Command("losetup", { args: ["-a"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

function mountedOn(dir: string): boolean {
  return Deno.readTextFileSync("/proc/mounts").split("\n").some((l) => l.split(" ")[1] === dir);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The file a loop device reads and writes, from sysfs. */
function backingFile(loopName: string): string {
  return Deno.readTextFileSync(`/sys/block/${loopName}/loop/backing_file`).trim();
}

/** What a fixture made, noted inside `fn` to check its cleanup afterwards. */
interface Made {
  dir: string;
  backing: string;
}

async function assertCleanedUp(made: Made | undefined): Promise<void> {
  assert(made, "fn was not called");
  assert(!mountedOn(made.dir), `${made.dir} is still in /proc/mounts`);
  assert(!exists(made.dir), `${made.dir} still exists`);
  assert(!(await losetupAll()).includes(made.backing), `${made.backing} is still in losetup -a`);
  assert(!exists(made.backing), `${made.backing} still exists`);
}

function noteMount(m: MountedFs): Made {
  return { dir: m.mountPoint, backing: backingFile(m.device.name) };
}

for (const [fs, sizeMiB] of [["ext4", 16], ["xfs", 300]] as const) {
  Deno.test(`withFilesystem(${fs}): write, remount, read back from the device; cleaned up`, async () => {
    let made: Made | undefined;
    const data = pattern(256 * KiB);
    const result = await withFilesystem(fs, sizeMiB, async (m) => {
      made = noteMount(m);
      assertEquals(m.fs, fs);
      assert(m.mountPoint.startsWith("/tmp/"), m.mountPoint);
      assert(
        Deno.readTextFileSync("/proc/mounts").includes(`${m.device.path} ${m.mountPoint} ${fs} `),
        `${m.device.path} is not mounted on ${m.mountPoint} as ${fs}`,
      );
      assert(/^\/(dev\/shm|var\/tmp)\/tsprobe-test-/.test(made.backing), made.backing);
      const file = `${m.mountPoint}/data.bin`;
      await Deno.writeFile(file, data);
      await m.remount();
      const before = diskstats(m.device.name);
      assertEquals(await Deno.readFile(file), data);
      const after = diskstats(m.device.name);
      // The unmount dropped the cached pages, so the data came from the device.
      assert(
        after.sectorsRead - before.sectorsRead >= data.length / 512,
        `read ${after.sectorsRead - before.sectorsRead} sectors after remount`,
      );
      return "result of fn";
    });
    assertEquals(result, "result of fn");
    await assertCleanedUp(made);
  });
}

Deno.test("withFilesystem: unmount() and mount() inside fn; the cleanup still works", async () => {
  let made: Made | undefined;
  await withFilesystem("ext4", 8, async (m) => {
    made = noteMount(m);
    await Deno.writeTextFile(`${m.mountPoint}/kept`, "kept");
    await rejects(m.mount(), /already mounted/);
    await m.unmount();
    assert(!mountedOn(m.mountPoint));
    await m.unmount(); // a no-op
    await m.mount();
    assertEquals(await Deno.readTextFile(`${m.mountPoint}/kept`), "kept");
    await m.unmount(); // and leave it unmounted
  });
  await assertCleanedUp(made);
});

Deno.test("withFilesystem: dropCaches() makes the next read go to the device", async () => {
  await withFilesystem("ext4", 8, async (m) => {
    const file = `${m.mountPoint}/data.bin`;
    const data = pattern(128 * KiB);
    await Deno.writeFile(file, data);
    let before = diskstats(m.device.name);
    assertEquals(await Deno.readFile(file), data);
    assertEquals(diskstats(m.device.name).sectorsRead, before.sectorsRead, "read was not cached");
    await dropCaches();
    before = diskstats(m.device.name);
    assertEquals(await Deno.readFile(file), data);
    assert(diskstats(m.device.name).sectorsRead - before.sectorsRead >= data.length / 512);
  });
});

Deno.test("withFilesystem: cleaned up when fn throws", async () => {
  for (const fs of ["ext4", "xfs"] satisfies FsType[]) {
    let made: Made | undefined;
    await rejects(
      withFilesystem(fs, fs === "xfs" ? 300 : 8, (m) => {
        made = noteMount(m);
        return Promise.reject(new Error("fn failed"));
      }),
      { message: "fn failed" },
    );
    await assertCleanedUp(made);
  }
});

Deno.test("withFilesystem: a file left open makes it fall back to umount -l and say so", async () => {
  let made: Made | undefined;
  let open: Deno.FsFile | undefined;
  try {
    await rejects(
      withFilesystem("ext4", 8, async (m) => {
        made = noteMount(m);
        open = await Deno.open(`${m.mountPoint}/held`, { write: true, create: true });
      }),
      /still busy after \d+ tries.*umount -l/,
    );
    // Lazily detached: out of the namespace already, directory removed, but the loop device
    // only goes when the filesystem is released.
    assert(!mountedOn(made!.dir));
    assert(!exists(made!.dir));
  } finally {
    open?.close();
  }
  // The last close frees the filesystem, whose release of the loop device detaches it
  // (withLoopDevice's losetup -d only marked it for autoclear).
  for (let i = 0; i < 50 && (await losetupAll()).includes(made!.backing); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await assertCleanedUp(made);
});

Deno.test("withFilesystem: rejects sizes mkfs would refuse, before making anything", async () => {
  const fn = () => Promise.reject(new Error("fn must not be called"));
  await rejects(withFilesystem("xfs", 299, fn), RangeError);
  await rejects(withFilesystem("ext4", 3, fn), RangeError);
  await rejects(withFilesystem("ext4", 4.5, fn), RangeError);
  await rejects(withFilesystem("btrfs" as FsType, 64, fn), TypeError);
});

Deno.test("withZram: 1 MiB written and read back with dd; the device is removed", async () => {
  const src = await Deno.makeTempFile({ dir: "/dev/shm", prefix: "tsprobe-zram-" });
  let name = "";
  try {
    const data = pattern(MiB);
    await Deno.writeFile(src, data);
    await withZram(16, async (z) => {
      name = z.name;
      match(z.name, /^zram\d+$/);
      assertEquals(z.path, `/dev/${z.name}`);
      assertEquals(
        Deno.readTextFileSync(`/sys/block/${z.name}/dev`).trim(),
        `${z.major}:${z.minor}`,
      );
      assertEquals(Number(Deno.readTextFileSync(`/sys/block/${z.name}/disksize`)), 16 * MiB);
      const before = diskstats(z.name);
      const w = await sh("dd", [`if=${src}`, `of=${z.path}`, "bs=1M", "count=1", "oflag=direct"]);
      assertEquals(w.code, 0, w.stderr);
      const out = await new Deno.Command("dd", {
        args: [`if=${z.path}`, "bs=1M", "count=1", "iflag=direct", "status=none"],
        stdout: "piped",
      }).output();
      assert(out.success, "dd read failed");
      assertEquals(out.stdout, data);
      const after = diskstats(z.name);
      assertEquals(after.sectorsWritten - before.sectorsWritten, MiB / 512);
      assertEquals(after.sectorsRead - before.sectorsRead, MiB / 512);
    });
  } finally {
    await Deno.remove(src);
  }
  assert(!exists(`/sys/block/${name}`), `${name} still exists`);
  assert(!exists(`/dev/${name}`), `/dev/${name} still exists`);
});

Deno.test("withZram: removed when fn throws", async () => {
  let name = "";
  await rejects(
    withZram(4, (z) => {
      name = z.name;
      return Promise.reject(new Error("fn failed"));
    }),
    { message: "fn failed" },
  );
  notStrictEqual(name, "");
  assert(!exists(`/sys/block/${name}`), `${name} still exists`);
});

Deno.test("withFullLoopDevice: direct writes past the tmpfs fail (ENOSPC); cleaned up", async () => {
  let made: Made | undefined;
  await withFullLoopDevice(async ({ device, capacityBytes }) => {
    const backing = backingFile(device.name);
    made = { dir: backing.slice(0, backing.lastIndexOf("/")), backing };
    assert(
      Deno.readTextFileSync("/proc/mounts").includes(`tsprobe-full ${made.dir} tmpfs `),
      `no tmpfs on ${made.dir}`,
    );
    assertEquals(capacityBytes, 4 * MiB);
    assertEquals(Number(Deno.readTextFileSync(`/sys/block/${device.name}/size`)) * 512, 64 * MiB);
    const before = diskstats(device.name);
    const dd = await sh("dd", [
      "if=/dev/zero",
      `of=${device.path}`,
      "bs=1M",
      "count=16",
      "oflag=direct",
    ]);
    assertEquals(dd.code, 1, dd.stderr);
    // With direct I/O to its backing file the loop driver passes ENOSPC on; without (tmpfs
    // before Linux 6.6 refuses O_DIRECT) it completes the failed write with EIO.
    const error = loopDirectIo(device.name) ? "No space left on device" : "Input/output error";
    match(dd.stderr, new RegExp(`error writing .*: ${error}`));
    // Everything up to the tmpfs size was stored, then the next write failed as a whole.
    match(dd.stderr, new RegExp(`^${capacityBytes} bytes .* copied`, "m"));
    const after = diskstats(device.name);
    // The failed requests count as completed writes too.
    assert(after.sectorsWritten - before.sectorsWritten > capacityBytes / 512);
  });
  await assertCleanedUp(made);
});

Deno.test("withFullLoopDevice: cleaned up when fn throws", async () => {
  let made: Made | undefined;
  await rejects(
    withFullLoopDevice(({ device }) => {
      const backing = backingFile(device.name);
      made = { dir: backing.slice(0, backing.lastIndexOf("/")), backing };
      return Promise.reject(new Error("fn failed"));
    }),
    { message: "fn failed" },
  );
  await assertCleanedUp(made);
});
