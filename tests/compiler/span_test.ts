import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { run, span, syscall } from "../../mod.ts";

Deno.test("span carries time and values from one probe to another; JavaScript sees only the slow ones", async () => {
  const opens = 8;
  const slow = 3;
  // Slow ones far slower than the threshold, fast ones far faster, even on a loaded machine.
  const pauseMs = 300;
  // perl opens /dev/null, pauses for the first `slow` files, then closes it.
  const script = `for my $i (1..${opens}) { open(my $f, "<", "/dev/null") or die; ` +
    `select(undef, undef, undef, ${pauseMs / 1000}) if $i <= ${slow}; close($f) }`;
  const held = span(
    syscall.on("openat:return").where((e) => e.ret >= 0 && e.comm === "perl"),
    syscall.on("close:entry").where((e) => e.comm === "perl"),
    {
      key: [(e) => [e.tid, e.ret], (e) => [e.tid, e.args.fd]],
      carry: { fd: (e) => e.ret },
      name: "fd held",
    },
  );
  const seen: { latencyNs: number; fd: number; startFd: number; comm: string }[] = [];
  held.where((e) => e.latencyNs > 150_000_000).on((e) =>
    seen.push({ latencyNs: e.latencyNs, fd: e.args.fd, startFd: e.start.fd, comm: e.comm })
  );
  const all = held.count();
  const summary = await run({ command: ["perl", "-e", script], printAggregations: false });
  equal(summary.commandExitCode, 0);
  equal(seen.length, slow);
  for (const s of seen) {
    ok(s.latencyNs >= pauseMs * 1e6 && s.latencyNs < 2e9, `latency ${s.latencyNs}`);
    equal(s.fd, s.startFd);
    equal(s.comm, "perl");
  }
  // Every open of the loop ended in a close that found it (perl's own startup files too).
  const matched = all.read()!.rows[0].value;
  ok(matched.kind === "count" && matched.value >= opens, JSON.stringify(matched));
  const [stats] = summary.spans;
  equal(stats.name, "fd held");
  ok(matched.kind === "count");
  equal(stats.matched, matched.value);
  equal(stats.lost, 0);
  ok(stats.started >= stats.matched && stats.started - stats.matched === stats.open);
});

Deno.test("only ends that pass the end stream's predicates end a span", async () => {
  const never = span(
    syscall.on("openat:entry").where((e) => e.comm === "cat"),
    syscall.on("openat:return").where((e) => e.ret < -1000),
    { key: (e) => e.tid, name: "never" },
  );
  let seen = 0;
  never.on(() => seen++);
  const summary = await run({ command: ["cat", "/etc/hostname"], printAggregations: false });
  equal(summary.commandExitCode, 0);
  equal(seen, 0);
  const [stats] = summary.spans;
  equal(stats.matched, 0);
  ok(stats.started > 0 && stats.open + stats.lost === stats.started, JSON.stringify(stats));
});

Deno.test("span() given something other than two streams says what it takes", () => {
  throws(
    // deno-lint-ignore no-explicit-any
    () => span("read" as any, "read:return" as any, { key: (e: any) => e.tid }),
    /span\(start, end, options\) takes two streams/,
  );
});
