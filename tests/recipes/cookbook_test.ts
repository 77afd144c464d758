/**
 * Every one-liner of the README's cookbook, run with `probe -e` against a workload, its output
 * checked. The README and this table must list the same one-liners.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { exists } from "../fixtures/bpf.ts";
import { probe } from "../fixtures/subprocess.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const FILE = `/var/tmp/tsprobe-cookbook-${crypto.randomUUID()}`;
/** The disk FILE's I/O goes to ("vda"), as io's dev_statname names it. */
const DISK = diskOf("/var/tmp");

/** The whole disk holding directory `dir`: its device in sysfs, or the disk of its partition. */
function diskOf(dir: string): string {
  const dev = Deno.statSync(dir).dev;
  // glibc's dev_t packing: major in bits 8-19 (and 32 up), minor in bits 0-7 and 20-31.
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  const sys = Deno.realPathSync(`/sys/dev/block/${major}:${minor}`);
  const inDisk = sys.split("/").slice(-2)[0];
  return exists(`${sys}/partition`) ? inDisk : sys.slice(sys.lastIndexOf("/") + 1);
}

/** The README's one-liners, in order. */
function cookbook(): string[] {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const block = readme.split("<!-- cookbook: begin -->")[1].split("<!-- cookbook: end -->")[0];
  return block.split("\n").filter((l) => l.startsWith("|")).slice(2)
    .map((l) => l.split("|")[2].trim().replace(/^`|`$/g, ""));
}

const FIO = (engine: string) =>
  `fio --name=c --filename=${FILE} --size=8m --rw=randread --bs=4k --iodepth=4 ` +
  `--ioengine=${engine} --direct=1 --number_ios=256 --output-format=terse > /dev/null`;

/** One-liner → the workload it traces and what its output must show. */
const EXPECT: Record<string, { workload: string; output: RegExp }> = {
  'syscall.on("openat:entry").count((e) => e.comm)': {
    workload: "cat /etc/hostname > /dev/null",
    output: /@count\[cat\]: +\d+/,
  },
  'syscall.on("openat:entry", (e) => console.log(e.comm, e.args.filename))': {
    workload: "cat /etc/hostname > /dev/null",
    output: /^cat \/etc\/hostname$/m,
  },
  'syscall.on("openat:return").where((e) => e.ret < 0).count((e) => e.args.filename)': {
    workload: "cat /nonexistent-cookbook 2>/dev/null; true",
    output: /@count\[\/nonexistent-cookbook\]: +1$/m,
  },
  'syscall.on("read:return").where((e) => e.ret > 0).sum((e) => e.ret, { by: (e) => e.comm })': {
    workload: "dd if=/dev/zero of=/dev/null bs=1k count=20 status=none",
    output: /@sum\(e\.ret\)\[dd\]: +2\d{4}/,
  },
  'syscall.on("read:return").where((e) => e.ret > 0).hist((e) => e.ret)': {
    workload: "dd if=/dev/zero of=/dev/null bs=1k count=20 status=none",
    output: /^\[1K, 2K\) +2\d /m,
  },
  'syscall.on("read:return").where((e) => e.comm.startsWith("dd")).max((e) => e.ret)': {
    workload: "dd if=/dev/zero of=/dev/null bs=3000 count=2 status=none",
    output: /@max\(e\.ret\): 3000/,
  },
  'syscall.on("write:return").stats((e) => e.latencyNs, { by: (e) => e.comm })': {
    workload: "dd if=/dev/zero of=/dev/null bs=1k count=7 status=none",
    output: /\[dd\]: +count 7, average \d+/,
  },
  'tracepoint("sched:sched_process_exec").on((e) => console.log(e.pid, e.args.filename))': {
    workload: "/bin/true",
    output: /^\d+ \/bin\/true$/m,
  },
  'tracepoint("raw_syscalls:sys_enter").count((e) => syscallName(e.args.id), { top: 5 })': {
    workload: "perl -e 'getppid() for 1..300'",
    output: /@count\[getppid\]: +3\d\d/, // counted by number in the kernel, named when shown
  },
  'syscall.on("getppid:entry").where((e) => e.task.real_parent.tgid > 1).count((e) => e.comm)': {
    workload: "perl -e 'getppid() for 1..5'",
    output: /@count\[perl\]: 5/,
  },
  'span(syscall.on("openat:return"), syscall.on("close:entry"), { key: [(e) => [e.tid, e.ret], (e) => [e.tid, e.args.fd]] }).hist((e) => e.latencyNs / 1000)':
    {
      workload: "cat /etc/hostname > /dev/null",
      output: /^@hist\(e\.latencyNs \/ 1000\):\n\[/m,
    },
  'io.on("done").hist((e) => e.latencyNs! / 1000, { by: (e) => e.dev.dev_statname })': {
    workload: `dd if=/dev/zero of=${FILE} bs=64k count=16 oflag=direct status=none`,
    output: new RegExp(`@hist\\(e\\.latencyNs \\/ 1000\\)\\[${DISK}\\]:`),
  },
  'io.on("start").sum((e) => e.buf.b_bcount, { by: (e) => e.file.fi_pathname })': {
    workload: `dd if=/dev/zero of=${FILE} bs=64k count=16 oflag=direct status=none`,
    output: new RegExp(`@sum\\(e\\.buf\\.b_bcount\\)\\[${FILE}\\]: +1048576`),
  },
  'io.on("start").where((e, p) => (e.buf.b_flags & p.W) !== 0, { W: B.B_WRITE }).count((e) => e.dev.dev_statname)':
    {
      workload: `dd if=/dev/zero of=${FILE} bs=64k count=16 oflag=direct status=none`,
      output: new RegExp(`@count\\[${DISK}\\]: +(1[6-9]|[2-9]\\d|\\d{3,})`),
    },
  'io.on("wait-done").sum((e) => e.waitNs, { by: (e) => e.comm })': {
    workload: `dd if=/dev/zero of=${FILE} bs=4k count=64 oflag=direct status=none`,
    output: /\[dd\]: +\d+/,
  },
  'aio.on("reap").hist((e) => e.latencyNs / 1000, { by: (e) => e.op })': {
    workload: FIO("libaio"),
    output: /@hist\(e\.latencyNs \/ 1000\)\[PREAD\]:/,
  },
  'aio.on("uring").count((e) => e.opcode)': {
    workload: FIO("io_uring"),
    output: /@count\[22\]: 256/, // IORING_OP_READ
  },
};

Deno.test("the README's cookbook and this test list the same one-liners", () => {
  equal(cookbook(), Object.keys(EXPECT));
  ok(cookbook().length >= 15);
});

for (const [line, { workload, output }] of Object.entries(EXPECT)) {
  Deno.test(`cookbook: ${line}`, async () => {
    try {
      const r = await probe(["-e", line, "-c", workload]);
      equal(r.code, 0, r.stderr);
      ok(output.test(r.stdout), `expected ${output} in:\n${r.stdout}`);
    } finally {
      await Deno.remove(FILE).catch(() => {});
    }
  });
}
