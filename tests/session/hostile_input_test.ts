/**
 * Input a user or a traced process controls: a handler's exit() stops delivery at once; bad
 * durations and intervals are usage errors; text from traced processes reaches the terminal
 * with its control characters escaped.
 *
 * Needs root, libbpf and perl.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { exit, printable, run, syscall } from "../../mod.ts";
import { denoRun, probe, recipe } from "../fixtures/subprocess.ts";

Deno.test("exit() in a handler stops delivery at once", async () => {
  let calls = 0;
  syscall.on("getppid:entry").where((e) => e.comm === "perl").on(() => {
    // The first call is slow, so that more events are queued behind it before it returns.
    const until = performance.now() + (calls++ === 0 ? 100 : 0);
    while (performance.now() < until) { /* busy */ }
    exit();
  });
  const summary = await run({ command: ["perl", "-e", "syscall(110) for 1..20000; sleep 5"] });
  equal(summary.reason, "exit");
  equal(calls, 1);
  equal(summary.events, 1);
});

Deno.test("bad durations and intervals are one-line usage errors, exit 2", async () => {
  const oneLiner = ["-e", "syscall.on('getppid:entry').count()"];
  const cases: Array<[string, string[], RegExp]> = [
    ["cli.ts", [...oneLiner, "-d", "2"], /Duration '2' is not valid/],
    ["cli.ts", [...oneLiner, "-d", "2sec"], /Duration '2sec' is not valid/],
    ["cli.ts", [...oneLiner, "-i", "0s"], /Interval '0s' must be longer than 0/],
    ["scripts/syscount.ts", ["-d", "2"], /Duration '2' is not valid/],
    ["scripts/syscount.ts", ["-a", "-i", "0s"], /Interval '0s' must be longer than 0/],
  ];
  for (const [file, args, says] of cases) {
    const r = await denoRun(file, args);
    equal(r.code, 2, `${file} ${args.join(" ")}: ${r.stderr}`);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(says.test(r.stderr), r.stderr);
  }
});

Deno.test("a file name with terminal escapes is printed escaped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-escape-" });
  const name = `${dir}/red\x1b[31m\x07\nline`;
  await Deno.writeTextFile(name, "x");
  try {
    const escaped = printable(name);
    equal(escaped, `${dir}/red\\x1b[31m\\x07\\nline`);
    const command = `cat "$(printf '${dir}/red\\033[31m\\007\\nline')" > /dev/null`;
    const snoop = await recipe("opensnoop", "-c", command);
    equal(snoop.code, 0, snoop.stderr);
    ok(snoop.stdout.includes(escaped), snoop.stdout);
    const counted = await probe([
      "-e",
      "syscall.on('openat:entry').count((e) => e.args.filename)",
      "-c",
      command,
    ]);
    equal(counted.code, 0, counted.stderr);
    ok(counted.stdout.includes(`[${escaped}]`), counted.stdout);
    for (const out of [snoop.stdout, counted.stdout]) {
      // deno-lint-ignore no-control-regex -- looking for control characters is the point
      ok(!/[\x00-\x09\x0b-\x1f\x7f]/.test(out), "a control character reached the terminal");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a return whose entry was not seen has no latency: never aggregated as a number, counted, testable in the kernel", async () => {
  // A child already blocked in read(2) when tracing starts: that read's return has no entry.
  const child = new Deno.Command("perl", {
    args: ["-e", "sysread(STDIN, $a, 1); sysread(STDIN, $b, 1)"],
    stdin: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  try {
    for (let i = 0; i < 500; i++) {
      const call = await Deno.readTextFile(`/proc/${child.pid}/syscall`).catch(() => "");
      if (call.startsWith("0 ")) break; // blocked in read
      await new Promise((r) => setTimeout(r, 10));
    }
    const reads = syscall.on("read:return").where((e, p) => e.pid === p.pid, { pid: child.pid });
    const seen: Array<number | undefined> = [];
    reads.on((e) => seen.push(e.latencyNs));
    const min = reads.min((e) => e.latencyNs!);
    const hist = reads.hist((e) => e.latencyNs! / 1000);
    const unknown = reads.where((e) => e.latencyNs === undefined).count();
    const known = reads.where((e) => e.latencyNs !== undefined).count();
    const stop = new AbortController();
    const summary = await run({
      pid: child.pid,
      signal: stop.signal,
      printAggregations: false,
      onAttached: async () => {
        const byte = new Uint8Array([120]);
        await writer.write(byte);
        await new Promise((r) => setTimeout(r, 100));
        await writer.write(byte);
        await child.status;
        stop.abort();
      },
    });
    equal(seen.length, 2);
    equal(seen[0], undefined, "the read entered before tracing has no latency");
    ok(typeof seen[1] === "number" && seen[1] > 0, `${seen[1]}`);
    const value = (a: typeof min) => a.read()!.rows[0]?.value;
    const m = value(min);
    equal(m?.kind === "min" && m.value, seen[1]);
    const h = value(hist);
    equal(h?.kind === "hist" && h.buckets.reduce((n, b) => n + b.count, 0), 1);
    const u = value(unknown), k = value(known);
    equal([u?.kind === "count" && u.value, k?.kind === "count" && k.value], [1, 1]);
    equal(summary.counters["aggregations.unknown"], 2, "left out of min and of hist");
    equal(summary.losses, [
      "2 events left out of aggregations: a latency's start was not seen (aggregations.unknown)",
    ]);
  } finally {
    await writer.close().catch(() => {});
    await child.status;
  }
});
