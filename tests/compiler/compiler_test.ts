import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { explain, LambdaError, run, session, span, syscall } from "../../mod.ts";

const limit = 10;
// deno-lint-ignore no-explicit-any
const BAD: Array<[string, (e: any) => unknown, string]> = [
  ["a closure over a free variable", (e) => e.ret > limit, "limit"],
  // Deno's TypeScript emit drops the spaces inside for (;;).
  ["a loop", (e) => {
    for (;;) return e.ret;
  }, "return e.ret;"],
  ["a call to an unknown function", (e) => parseInt(e.ret), "parseInt(e.ret)"],
  ["a property write", (e) => (e.ret = 1), "e.ret = 1"],
  ["a misspelled field", (e) => e.args.fdd === 1, "e.args.fdd"],
];

for (const [what, fn, snippet] of BAD) {
  Deno.test(`${what} is a LambdaError quoting its source, before anything is loaded`, async () => {
    syscall.on("read:return").where(fn).count();
    try {
      await rejects(explain(), (e) => e instanceof LambdaError && e.message.includes(snippet));
    } finally {
      // run() fails the same way and leaves a fresh session for the next test.
      await rejects(
        run({ duration: 1000 }),
        (e) => e instanceof LambdaError && e.message.includes(snippet) && !e.message.includes("\n"),
      );
    }
    equal(session().programs.length, 0, "no program was loaded");
  });
}

Deno.test("explain shows captures, what runs where, the maps and the assembly", async () => {
  const reads = syscall.on("read:return").where((e) => e.ret > 0 && e.comm !== "sshd");
  reads.hist((e) => e.ret, { by: (e) => e.comm, title: "read sizes" });
  reads.on((e) => console.log(e.latencyNs));
  const text = await explain();
  ok(text.includes("probe syscall:read:return"), text);
  // Deno's TypeScript emit drops the spaces around =>, so sources are matched loosely.
  ok(/\[kernel\] where \(e\) ?=> ?e\.ret > 0 && e\.comm !== "sshd": hist of/.test(text), text);
  ok(text.includes("[JavaScript]") && text.includes("send latencyNs to"), text);
  ok(/captured in the kernel: .*ret \(8 B\)/.test(text), text);
  ok(text.includes("agg_0: percpu_hash"), text);
  ok(text.includes("call map_lookup_elem"), text);
  // Nothing ran: running now loads exactly the plan, and prints nothing unasked.
  const summary = await run({ command: ["true"], printAggregations: false });
  equal(summary.reason, "command");
});

Deno.test("explain shows a span's map of pending starts", async () => {
  const reads = span(syscall.on("read:entry"), syscall.on("read:return"), {
    key: (e) => e.tid,
    name: "reads",
  });
  reads.count();
  reads.where((e) => e.latencyNs > 1e15).on((e) => console.log(e.latencyNs));
  const text = await explain();
  ok(text.includes("span reads: starts kept in map span_0"), text);
  // The end's decoder reads the span's latency from the field the end site captured.
  ok(/decoded from the record: latencyNs = \$span0\.latencyNs @\d+ \(latency\)/.test(text), text);
  ok(
    /probe syscall:read:entry \(program sys_read\)\n {2}\[kernel\] start span 'reads'/.test(text),
    text,
  );
  await run({ command: ["true"], printAggregations: false });
});

Deno.test("the kernel captures only the fields a handler reads", async () => {
  const got: unknown[] = [];
  syscall.on("getppid:entry").where((e) => e.comm === "perl").on((e) => got.push(e.comm));
  const text = await explain();
  ok(/captured in the kernel: comm \(16 B\)$/m.test(text), text);
  ok(text.includes("send comm to the JavaScript handler"), text);
  await run({ command: ["perl", "-e", "getppid() for 1..3"] });
  equal(got, ["perl", "perl", "perl"]);
});

Deno.test("task members resolve through BTF, in predicates and in handlers", async () => {
  const seen: { parent: number; comm: string; parentComm: string; argStart: number }[] = [];
  syscall.on("getppid:entry")
    .where((e, p) => e.task.real_parent.tgid === p.me && e.task.comm === "perl", { me: Deno.pid })
    .on((e) =>
      seen.push({
        parent: e.task.real_parent.tgid,
        comm: e.task.comm,
        parentComm: e.task.real_parent.comm,
        argStart: e.task.mm.arg_start,
      })
    );
  const summary = await run({ command: ["perl", "-e", "getppid() for 1..4"] });
  equal(summary.commandExitCode, 0);
  equal(seen.length, 4);
  // The parent task is the thread of this process that spawned the command.
  const threads = [...Deno.readDirSync("/proc/self/task")].map((t) =>
    Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim()
  );
  for (const s of seen) {
    equal(s.parent, Deno.pid);
    equal(s.comm, "perl");
    ok(threads.includes(s.parentComm), `${s.parentComm} in ${threads}`);
    ok(s.argStart > 0x1000, `arg_start ${s.argStart}`);
  }
  syscall.on("getppid:entry").where((e) => e.task.real_parent.tgidd === 1).count();
  await rejects(
    explain(),
    (e) => e instanceof LambdaError && e.message.includes("e.task.real_parent.tgidd"),
  );
  await rejects(run());
});
