/**
 * Names chosen by a traced process reach the terminal escaped: every recipe that prints a
 * comm, a file name or a path, and a one-liner's console.log, run on a process whose comm and
 * files carry terminal escapes (clear the screen, set the window title). Nothing of them may
 * reach stdout raw; their escaped form (printable()) must be there.
 *
 * Needs root, libbpf, perl, fio, and ext4 on a loop device.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { printable } from "../../mod.ts";
import { withFilesystem } from "../fixtures/filesystem.ts";
import { aggregationsOf, tableOf } from "../fixtures/records.ts";
import { denoRun } from "../fixtures/subprocess.ts";

/** Clears the screen and sets the window title: 12 bytes, so it fits in a comm (15). */
const HOSTILE = "\x1b[2J\x1b]0;pwn\x07";
/** How it must show: `\x1b[2J\x1b]0;pwn\x07` with the backslashes written out. */
const SHOWN = printable(HOSTILE);
/** The same, as perl writes it in a string literal (no raw control bytes in a command line). */
const PERL_HOSTILE = String.raw`\e[2J\e]0;pwn\a`;

/** Runs a recipe (or the CLI) and checks its stdout shows `expected` and no control byte. */
async function shows(expected: string[], file: string, ...args: string[]): Promise<string> {
  const r = await denoRun(file, args);
  equal(r.code, 0, `${file}: ${r.stderr}`);
  // deno-lint-ignore no-control-regex -- looking for control characters is the point
  const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/.exec(r.stdout);
  ok(!raw, `${file}: a control character (${JSON.stringify(raw?.[0])}) reached stdout`);
  for (const e of expected) ok(r.stdout.includes(e), `${file}: no '${e}' in:\n${r.stdout}`);
  return r.stdout;
}

/** A directory under /var/tmp (O_DIRECT works there) holding `program` linked as HOSTILE. */
async function withHostileProgram<T>(
  program: string,
  fn: (dir: string, exe: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tsprobe-escape-" });
  try {
    const exe = `${dir}/${HOSTILE}`;
    // exec names the process after the file it ran: its comm is HOSTILE.
    await Deno.symlink(program, exe);
    return await fn(dir, exe);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("biosnoop, iotop and iowait --files show a hostile comm and file name escaped", async () => {
  await withFilesystem("ext4", 16, async (m) => {
    const file = `${m.mountPoint}/${HOSTILE}.bin`;
    await Deno.writeFile(file, new Uint8Array(256 * 1024).fill(1));
    await withHostileProgram("/usr/bin/dd", async (_, exe) => {
      const work = `'${exe}' if='${file}' of=/dev/null bs=4k count=64 iflag=direct status=none`;
      const path = `${m.mountPoint}/${SHOWN}.bin`;
      const disk = m.device.name;
      await shows([SHOWN, path], "scripts/biosnoop.ts", "-c", work, "--disk", disk);
      await shows([path], "scripts/iotop.ts", "-c", work, "--disk", disk);
      await shows([SHOWN, path], "scripts/iowait.ts", "-c", work, "--files");
    });
  });
});

Deno.test("fileslower shows a hostile comm and fifo name escaped", async () => {
  await withHostileProgram("/usr/bin/true", async (dir) => {
    const fifo = `${dir}/${HOSTILE}.fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    ok(made.success, "mkfifo");
    // One read of the fifo waits 100 ms for its writer (a child); the reader stays a while,
    // so that the recipe can name its fd.
    const perl = `perl -e '$0 = "${PERL_HOSTILE}"; open(my $f, "+<", $ARGV[0]) or die; ` +
      `if (fork) { sysread($f, $c, 1); select(undef, undef, undef, 0.3) } ` +
      `else { select(undef, undef, undef, 0.1); syswrite($f, "x") }' '${fifo}'`;
    await shows(
      [SHOWN, `${dir}/${SHOWN}.fifo`],
      "scripts/fileslower.ts",
      "--min-ms",
      "20",
      "-c",
      perl,
    );
  });
});

Deno.test("syscount and syslat --per-process show a hostile comm escaped", async () => {
  const perl = `perl -e '$0 = "${PERL_HOSTILE}"; getppid() for 1..50'`;
  await shows([SHOWN], "scripts/syscount.ts", "--per-process", "--top", "500", "-c", perl);
  await shows([SHOWN], "scripts/syslat.ts", "--per-process", "--top", "500", "-c", perl);
});

Deno.test("aio_latency shows a hostile comm (--by process) and file name (--by fd) escaped", async () => {
  await withHostileProgram("/usr/bin/fio", async (dir, exe) => {
    // fio's job process keeps the comm of the file it ran; the pauses give the recipe time to
    // name the file while it is open. fio cuts a file name at ':' and ';': none here.
    const file = "\x1b[2Jpwn\x07.dat";
    const fio = `'${exe}' --name=escape --filename='${dir}/${file}' --size=4m ` +
      `--rw=randread --bs=4k --ioengine=libaio --direct=1 --iodepth=4 --number_ios=256 ` +
      `--thinktime=1000 --output-format=terse > /dev/null`;
    await shows([`${SHOWN} (pid `], "scripts/aio_latency.ts", "-c", fio);
    await shows([`${dir}/${printable(file)}`], "scripts/aio_latency.ts", "--by", "fd", "-c", fio);
  });
});

Deno.test("a one-liner's console.log and console.count show a hostile comm escaped", async () => {
  const perl = `perl -e '$0 = "${PERL_HOSTILE}"; getppid()'`;
  const printer = `syscall.on("getppid:entry", (e) => ` +
    `{ console.log("comm", e.comm, { comm: e.comm }); console.count(e.comm); })`;
  const out = await shows([`comm ${SHOWN}`, `${SHOWN}: 1`], "cli.ts", "-e", printer, "-c", perl);
  ok(out.includes(`comm: "${SHOWN}"`), out); // objects: as Deno.inspect escapes them
});

Deno.test("JSON output writes DEL and C1 controls (which JSON.stringify leaves raw) as \\u escapes", async () => {
  // U+009B is CSI, the one-byte form of ESC [; in UTF-8 the bytes C2 9B, which a comm may hold.
  const comm = "a\x9b31mX\x7f";
  const perl = String.raw`perl -e '$0 = "a\xc2\x9b31mX\x7f"; getppid() for 1..5'`;
  const one = await shows(
    [],
    "scripts/syscount.ts",
    "--per-process",
    "--top",
    "500",
    "--json",
    "-c",
    perl,
  );
  ok(tableOf<{ comm: string }>(one, "json", "syscalls").rows.some((s) => s.comm === comm), one);
  const count =
    "syscall.on('getppid:entry').where((e) => e.comm.startsWith('a')).count((e) => e.comm)";
  for (const format of ["json", "ndjson"] as const) {
    const out = await shows([], "cli.ts", "-e", count, "-c", perl, "--format", format);
    ok(out.includes(String.raw`a\u009b31mX\u007f`), out);
    equal(aggregationsOf(out, format).map((a) => a.rows), [[{ key: { comm }, value: 5 }]]);
  }
});
