/**
 * Tests of the system-information lookups against this machine's ground truth: a loop device
 * attached here (with and without a partition), the root file system as mountpoint(1) and
 * stat(2) see it, and /proc/kallsyms read independently. Needs root (losetup, kallsyms
 * addresses).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  blockDevice,
  blockDeviceByName,
  devMajor,
  devMinor,
  kernelDev,
} from "../../system/block_devices.ts";
import { ksym, ksymAddress, ksymName } from "../../system/kallsyms.ts";
import { mountForDev, mountsByDev, parseMountinfo, refreshMounts } from "../../system/mounts.ts";

function command(name: string, args: string[]): string {
  const out = new Deno.Command(name, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  if (!out.success) {
    throw new Error(`${name} ${args.join(" ")} failed (${out.code}): ${decode(out.stderr)}`);
  }
  return decode(out.stdout);
}

/** "MAJ:MIN" text → [major, minor]. */
function numbers(text: string): [number, number] {
  const [major, minor] = text.trim().split(":").map(Number);
  return [major, minor];
}

/**
 * Runs `fn` with a loop device over a fresh file in /dev/shm, then detaches it and removes the
 * file whatever happened. (Partitions are not tested: this kernel has no partition tables.)
 */
function withLoop<T>(fn: (path: string) => T): T {
  const file = `/dev/shm/tsprobe-sysinfo-${crypto.randomUUID()}.img`;
  const size = 4 * 1024 * 1024;
  let path: string | undefined;
  try {
    {
      using f = Deno.openSync(file, { write: true, createNew: true });
      f.truncateSync(size);
    }
    path = command("losetup", ["-f", "--show", file]);
    return fn(path);
  } finally {
    try {
      if (path) command("losetup", ["-d", path]);
    } finally {
      Deno.removeSync(file);
    }
  }
}

Deno.test("kernelDev, devMajor and devMinor round-trip the kernel's 12:20 bit split", () => {
  for (const [major, minor] of [[0, 0], [7, 3], [254, 0], [259, 1], [8, 255], [8, 256]]) {
    const dev = kernelDev(major, minor);
    assertEquals(dev, major * 2 ** 20 + minor);
    assertEquals([devMajor(dev), devMinor(dev)], [major, minor]);
  }
  // The largest major sets bit 31, which must not make the number negative.
  const top = kernelDev(4095, 0xfffff);
  assertEquals(top, 0xffffffff);
  assertEquals([devMajor(top), devMinor(top)], [4095, 0xfffff]);
  for (const [major, minor] of [[4096, 0], [0, 0x100000], [-1, 0], [1.5, 0]]) {
    let threw = false;
    try {
      kernelDev(major, minor);
    } catch (error) {
      threw = error instanceof RangeError;
    }
    assert(threw, `kernelDev(${major}, ${minor}) should throw a RangeError`);
  }
});

Deno.test("blockDevice finds a loop device attached during the session", () => {
  // Fill the cache first, so that the device below is found by the miss path if it is new.
  blockDevice(kernelDev(0, 0));
  withLoop((path) => {
    const name = path.slice("/dev/".length);
    const [major, minor] = numbers(Deno.readTextFileSync(`/sys/class/block/${name}/dev`));
    const device = blockDevice(kernelDev(major, minor));
    assertEquals(device, { name, path, driver: "loop", major, minor, partition: 0 });
    assert(/^loop\d+$/.test(device!.name), device!.name);
    assertEquals(blockDeviceByName(name), device);
    assertEquals(blockDeviceByName(path), device);
  });
});

// /proc/kallsyms read once here, independently of the module under test.
const KALLSYMS = Deno.readTextFileSync("/proc/kallsyms").split("\n").filter((line) => line !== "");

Deno.test("blockDevice and blockDeviceByName miss nonexistent devices", () => {
  assertEquals(blockDevice(kernelDev(4095, 0xfffff)), undefined);
  assertEquals(blockDevice(kernelDev(4095, 0xfffff)), undefined); // The rate-limited path.
  assertEquals(blockDeviceByName("no-such-disk"), undefined);
  assertEquals(blockDeviceByName("/dev/no-such-disk"), undefined);
});

Deno.test("mountsByDev names the root file system's device '/'", () => {
  refreshMounts();
  // mountpoint(1) prints the superblock's major:minor; stat(2) gives the same device in the
  // user-space encoding (glibc's gnu_dev_major/minor undo it).
  const [major, minor] = numbers(command("mountpoint", ["-d", "/"]));
  const st = Deno.statSync("/").dev;
  assertEquals(
    [major, minor],
    [(st >>> 8) & 0xfff, (st & 0xff) | (Math.floor(st / 2 ** 12) & 0xfff00)],
  );
  const root = mountsByDev().get(kernelDev(major, minor));
  assert(root !== undefined, `no mount for ${major}:${minor}`);
  assertEquals(root.mountPoint, "/");
  assertEquals(root.root, "/");
  assertEquals(root.fsType, command("findmnt", ["-n", "-o", "FSTYPE", "/"]));
  assertEquals(mountForDev(kernelDev(major, minor)), root);
  assertEquals(mountForDev(kernelDev(4095, 0xfffff)), undefined);
});

Deno.test("parseMountinfo prefers a root mount, then the shortest path, and unescapes", () => {
  const text = [
    "30 1 8:1 /sub /srv/bind rw - ext4 /dev/sda1 rw",
    "31 1 8:1 / /mnt/a\\040long\\040one rw shared:1 - ext4 /dev/sda1 rw",
    "32 1 8:1 / /data rw - ext4 /dev/sda1 rw",
    "33 1 0:50 /x /only/bind rw master:2 - tmpfs my\\040tmp rw",
    "garbage line",
    "",
  ].join("\n");
  const mounts = parseMountinfo(text);
  assertEquals(mounts.size, 2);
  assertEquals(mounts.get(kernelDev(8, 1)), {
    mountPoint: "/data",
    root: "/",
    fsType: "ext4",
    source: "/dev/sda1",
  });
  // A file system visible only through a bind mount of a subdirectory keeps that mount.
  assertEquals(mounts.get(kernelDev(0, 50)), {
    mountPoint: "/only/bind",
    root: "/x",
    fsType: "tmpfs",
    source: "my tmp",
  });
  const spaced = parseMountinfo("31 1 8:2 / /mnt/a\\040b\\134c rw - ext4 /dev/sda2 rw");
  assertEquals(spaced.get(kernelDev(8, 2))?.mountPoint, "/mnt/a b\\c");
});

/** vfs_read's address and the next symbol's, read from /proc/kallsyms here. */
function kallsymsAround(name: string): [bigint, bigint] {
  const lines = KALLSYMS;
  const index = lines.findIndex((line) => line.split(/\s+/)[2] === name);
  assert(index >= 0, `${name} is not in /proc/kallsyms`);
  const address = BigInt(`0x${lines[index].split(" ")[0]}`);
  const next = lines.slice(index + 1).map((line) => BigInt(`0x${line.split(" ")[0]}`))
    .find((a) => a > address);
  return [address, next!];
}

Deno.test("ksymName and ksymAddress agree with /proc/kallsyms", () => {
  const [address, next] = kallsymsAround("vfs_read");
  assert(address !== 0n, "kallsyms hides addresses: run as root");
  assertEquals(ksymAddress("vfs_read"), address);
  assertEquals(ksymName(ksymAddress("vfs_read")!), "vfs_read");
  assertEquals(ksymName(address + 5n), "vfs_read");
  assertEquals(ksymName(next - 1n), "vfs_read");
  assert(ksymName(next) !== "vfs_read");
  assertEquals(ksym(address + 5n), { name: "vfs_read", address, type: "T" });
  assertEquals(ksymAddress("no_such_kernel_symbol_xyz"), undefined);
  assertEquals(ksymName(0n), undefined);
  assertEquals(ksymName(-1n), undefined);
});

Deno.test("ksymName and ksymAddress are undefined when kallsyms hides addresses", () => {
  // Without CAP_SYSLOG (and perf_event_paranoid > 1) the kernel prints every address as zero.
  const paranoid = Number(Deno.readTextFileSync("/proc/sys/kernel/perf_event_paranoid"));
  const restrict = Number(Deno.readTextFileSync("/proc/sys/kernel/kptr_restrict"));
  if (paranoid <= 1 && restrict === 0) return; // Addresses stay visible: nothing to test.
  const module = new URL("../../system/kallsyms.ts", import.meta.url).href;
  const script = `import { ksymAddress, ksymName } from "${module}";
    console.log(JSON.stringify([ksymAddress("vfs_read") ?? null, ksymName(0xffffffff81000000n) ?? null]));`;
  const out = command("setpriv", [
    "--bounding-set=-syslog",
    Deno.execPath(),
    "eval",
    "--no-config",
    script,
  ]);
  assertEquals(out, "[null,null]");
});
