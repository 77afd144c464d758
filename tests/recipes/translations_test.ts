/**
 * The README's page of bpftrace and BCC translations: every row's tsprobe side run against a
 * workload, its output checked. The README and this table must list the same translations.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { probe, recipe } from "../fixtures/subprocess.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const PERL_GETPPID = "perl -e 'getppid() for 1..300'";

/** The README's translations' tsprobe sides, in order. */
function translations(): string[] {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const block = readme.split("<!-- translations: begin -->")[1]
    .split("<!-- translations: end -->")[0];
  return block.split("\n").filter((l) => l.startsWith("|")).slice(2)
    .map((l) => l.split("|").at(-2)!.trim().replace(/^`|`$/g, ""));
}

/** tsprobe side → the workload it traces, extra arguments, and what its output must show. */
const EXPECT: Record<string, { workload: string; args?: string[]; output: RegExp }> = {
  'syscall.on("openat:entry", (e) => console.log(e.comm, e.args.filename))': {
    workload: "cat /etc/hostname > /dev/null",
    output: /^cat \/etc\/hostname$/m,
  },
  'tracepoint("raw_syscalls:sys_enter").count((e) => e.comm)': {
    workload: PERL_GETPPID,
    output: /@count\[perl\]: +\d{3,}/,
  },
  'syscall.on("read:return").where((e) => e.ret > 0).hist((e) => e.ret)': {
    workload: "dd if=/dev/zero of=/dev/null bs=1k count=20 status=none",
    output: /^\[1K, 2K\) +2\d /m,
  },
  'syscall.on("read:return").lhist((e) => e.ret, { min: 0, max: 2000, step: 200 })': {
    workload: "dd if=/dev/zero of=/dev/null bs=1000 count=20 status=none",
    output: /^\[1000, 1200\) +2\d /m,
  },
  'syscall.on("read:return").hist((e) => e.latencyNs!, { by: (e) => e.comm })': {
    workload: "dd if=/dev/zero of=/dev/null bs=1k count=20 status=none",
    output: /@hist\(e\.latencyNs\)\[dd\]:/, // the title is the lambda without its `!`
  },
  'syscall.on("openat:return").where((e) => e.ret < 0).count((e) => e.comm)': {
    workload: "cat /nonexistent-translation 2>/dev/null; true",
    output: /@count\[cat\]: +\d+$/m,
  },
  'tracepoint("block:block_rq_issue").hist((e) => e.args.bytes)': {
    workload: "dd if=/dev/zero of=/var/tmp/.tsprobe-translation bs=64k count=8 oflag=direct " +
      "status=none; rm -f /var/tmp/.tsprobe-translation",
    args: ["-a"],
    output: /^\[64K, 128K\) +\d+ /m,
  },
  'tracepoint("sched:sched_process_fork").count((e) => e.kstack)': {
    workload: "perl -e 'fork() || exit 0; wait'",
    output: /^\s+kernel_clone(\+\d+)?$/m,
  },
  "profile({ hz: 99 }).count((e) => [e.ustack, e.comm])": {
    workload: "timeout 1 sh -c 'while :; do :; done'",
    output: /, sh\]: +\d+/,
  },
  'proc.on("exec", (e) => console.log(e.argv.join(" ")))': {
    workload: "/bin/echo translated argv > /dev/null",
    output: /^\/bin\/echo translated argv$/m,
  },
  'uprobe.on("libc:getppid").count((e) => e.comm)': {
    workload: PERL_GETPPID,
    output: /@count\[perl\]: 30\d/,
  },
  'uretprobe.on("libc:getppid").hist((e) => e.retval)': {
    workload: PERL_GETPPID,
    output: /^\[\d+K?, \d+K?\) +30\d /m,
  },
  'usdt.on("/usr/bin/python3:python:function__return", undefined, { strings: [1] }).count((e) => e.str1)':
    {
      workload: "/usr/bin/python3 -c 'import json'",
      output: /@count\[_path_join\]: +\d+/,
    },
  'io.on("done").hist((e) => e.latencyNs! / 1000, { by: (e) => e.dev.dev_statname })': {
    workload: "dd if=/dev/zero of=/var/tmp/.tsprobe-translation bs=64k count=8 oflag=direct " +
      "status=none; rm -f /var/tmp/.tsprobe-translation",
    output: /@hist\(e\.latencyNs \/ 1000\)\[\w+\]:/,
  },
  "scripts/opensnoop.ts": { workload: "cat /etc/hostname > /dev/null", output: /\/etc\/hostname/ },
  "scripts/execsnoop.ts": {
    workload: "/bin/echo one two > /dev/null",
    output: /\/bin\/echo one two/,
  },
  "scripts/biolatency.ts": {
    workload: "dd if=/dev/zero of=/var/tmp/.tsprobe-translation bs=64k count=8 oflag=direct " +
      "status=none; rm -f /var/tmp/.tsprobe-translation",
    output: /usecs/,
  },
  "scripts/syscount.ts": { workload: PERL_GETPPID, output: /^getppid +3\d\d$/m },
  "scripts/offcputime.ts": {
    workload: "sleep 0.3",
    args: ["--stacks", "kernel"],
    output: /^sleep\n(?: {4}\S.*\n)+ {2}\d{6}$/m, // about 300,000 us in nanosleep
  },
  "scripts/profile.ts": {
    workload: "timeout 1 sh -c 'while :; do :; done'",
    args: ["--folded"],
    output: /^sh;.* \d+$/m,
  },
  "scripts/funclatency.ts": {
    workload: PERL_GETPPID,
    args: ["-f", "libc:getppid"],
    output: /@libc:getppid \(us\):/,
  },
  "scripts/tcpconnect.ts": {
    workload: "perl -MIO::Socket::INET -e '$l = IO::Socket::INET->new(Listen => 1, " +
      "LocalAddr => q(127.0.0.1:0)) or die; IO::Socket::INET->new(PeerAddr => q(127.0.0.1), " +
      "PeerPort => $l->sockport) or die'",
    output: /perl +4 +127\.0\.0\.1 +127\.0\.0\.1 +\d+/,
  },
};

Deno.test("the README's translations and this test list the same tsprobe sides", () => {
  equal(translations(), Object.keys(EXPECT));
  ok(translations().length >= 20);
});

/**
 * Runs `file` (cli.ts or a recipe) with `args` system-wide: once its banner says it is
 * attached, runs `workload`, then ends it with SIGINT, as a user would with Ctrl-C.
 */
async function traceWhile(file: string, args: string[], workload: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${file}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes("tracing")) {
    const { value, done } = await stderr.read();
    if (done) break;
    err += value;
  }
  await new Deno.Command("sh", { args: ["-c", workload] }).output();
  child.kill("SIGINT");
  const [status, stdout] = await Promise.all([child.status, new Response(child.stdout).text()]);
  for (let r = await stderr.read(); !r.done; r = await stderr.read()) err += r.value;
  return { code: status.code, stdout, stderr: err };
}

for (const [side, { workload, args = [], output }] of Object.entries(EXPECT)) {
  Deno.test(`translation: ${side}`, async () => {
    const script = /^scripts\/(\w+)\.ts$/.exec(side);
    const [file, own] = script ? [`scripts/${script[1]}.ts`, []] : ["cli.ts", ["-e", side]];
    // probe traces every process unless told otherwise; a recipe needs -a.
    const everything = script ? args : args.filter((a) => a !== "-a");
    const r = args.includes("-a")
      ? await traceWhile(file, [...own, ...everything], workload)
      : script
      ? await recipe(script[1], "-c", workload, ...args)
      : await probe([...own, "-c", workload, ...args]);
    equal(r.code, 0, r.stderr);
    ok(output.test(r.stdout), `expected ${output} in:\n${r.stdout}`);
  });
}
