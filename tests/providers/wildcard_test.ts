import { deepStrictEqual as equal, ok, rejects, throws } from "node:assert/strict";
import { type Aggregation, LambdaError, run, syscall, tracepoint } from "../../mod.ts";
import { syscallNames } from "../../runtime/providers/syscall_numbers.ts";
import { MAX_TRACEPOINT_MATCHES } from "../../runtime/providers/tracepoint_pattern.ts";
import { withSyscaller } from "../fixtures/syscaller.ts";
import { probe } from "../fixtures/subprocess.ts";

/** An aggregation's rows as "key part,key part" → value. */
function rows(agg: Aggregation): Map<string, number> {
  return new Map(
    agg.read()!.rows.map((
      r,
    ) => [r.key.join(","), "value" in r.value ? Number(r.value.value) : NaN]),
  );
}

/** The number of syscall `name` on this machine. */
const numberOf = (name: string) =>
  Number(Object.entries(syscallNames()).find(([, n]) => n === name)![0]);

const [N, M, K, F] = [37, 23, 5, 3];
const args = [N, M, K, F].map(String);

Deno.test("syscall *:entry counts a child's calls by name in the kernel: N getppid and M getpid exactly, 32-bit calls left out", async () => {
  await withSyscaller(async (exe) => {
    const byName = syscall.on("*:entry").count((e) => e.syscall);
    const byProbe = syscall.on("*:entry").count((e) => e.probe);
    // `=== "getppid"` compares the number; startsWith() the name's bytes in the kernel.
    const one = syscall.on("*:entry").where((e) => e.syscall === "getppid").count((e) => e.id);
    const prefixed = syscall.on("*:entry").where((e) => e.syscall.startsWith("getp"))
      .count((e) => e.syscall);
    const summary = await run({ command: [exe, ...args] });
    equal(summary.commandExitCode, 0);
    const names = rows(byName);
    equal([names.get("getppid"), names.get("getpid")], [N, M]);
    equal([names.get("execve"), names.get("clone"), names.get("wait4")], [1, F, F]);
    equal(names.get("exit_group"), F + 1);
    // The ia32 getpid is number 20, writev's on x86_64: neither it nor any writev is counted.
    equal(names.get("writev"), undefined);
    equal(
      rows(byProbe),
      new Map([...names].map(([name, n]) => [`syscall:${name}:entry`, n])),
    );
    equal(rows(one), new Map([[String(numberOf("getppid")), N]]));
    equal(rows(prefixed), new Map([["getppid", N], ["getpid", M]]));
  });
});

Deno.test("syscall {getpid,getppid}:return gives each return's name, number, ret and in-kernel latency", async () => {
  await withSyscaller(async (exe) => {
    const seen: { syscall: string; probe: string; id: number; ret: number; latency?: number }[] =
      [];
    syscall.on("{getpid,getppid}:return", (e) => {
      seen.push({ syscall: e.syscall, probe: e.probe, id: e.id, ret: e.ret, latency: e.latencyNs });
    });
    const summary = await run({ command: [exe, ...args] });
    const of = (name: string) => seen.filter((s) => s.syscall === name);
    equal([of("getppid").length, of("getpid").length, seen.length], [N, M, N + M]);
    for (const s of seen) {
      equal(s.probe, `syscall:${s.syscall}:return`);
      equal(s.id, numberOf(s.syscall));
      ok(s.latency !== undefined && s.latency > 0 && s.latency < 1e9, `latency ${s.latency}`);
    }
    ok(of("getpid").every((s) => s.ret === summary.commandPid));
    equal(new Set(of("getppid").map((s) => s.ret)).size, 1);
  });
});

Deno.test("overlapping return patterns and a named return each time every call they share", async () => {
  await withSyscaller(async (exe) => {
    // Each has its own return program; one's taking the saved entry must not starve another.
    const timed = ["getppid:return", "getp*:return", "{getpid,getppid}:return"].map((spec) =>
      syscall.on(spec as "getppid:return").where((e) => e.syscall === "getppid")
        .hist((e) => e.latencyNs!)
    );
    await run({ command: [exe, ...args] });
    for (const [i, stream] of timed.entries()) {
      const [row] = stream.read()?.rows ?? [];
      ok(row?.value.kind === "hist", `stream ${i}: ${JSON.stringify(row)}`);
      equal(row.value.count, N, `stream ${i}`);
    }
  });
});

Deno.test("tracepoint patterns: one program per match, counted by the probe that fired, with the fields all matches share", async () => {
  await withSyscaller(async (exe) => {
    const syscalls = tracepoint("syscalls:sys_enter_getp*").count((e) => e.probe);
    const numbers = tracepoint("syscalls:sys_enter_getp*").count((e) => e.args.__syscall_nr);
    const sched = tracepoint("sched:sched_process_{exec,fork,wait}").count((e) => e.probe);
    const summary = await run({ command: [exe, ...args] });
    equal(summary.commandExitCode, 0);
    equal(
      rows(syscalls),
      new Map([
        ["tracepoint:syscalls:sys_enter_getppid", N],
        ["tracepoint:syscalls:sys_enter_getpid", M],
      ]),
    );
    equal(rows(numbers), new Map([[`${numberOf("getppid")}`, N], [`${numberOf("getpid")}`, M]]));
    equal(
      rows(sched),
      new Map([
        ["tracepoint:sched:sched_process_exec", 1],
        ["tracepoint:sched:sched_process_fork", F],
        ["tracepoint:sched:sched_process_wait", F],
      ]),
    );
  });
  // getpgid's `pid` is not a field getpid's tracepoint has.
  tracepoint("syscalls:sys_enter_getp*").count((e) => e.args.pid);
  await rejects(
    run({ duration: "1ms" }),
    (e) => e instanceof LambdaError && /args\.pid/.test(e.message),
  );
});

Deno.test("a pattern matching nothing, too much, or malformed is a one-line error", async () => {
  const oneLine = (re: RegExp) => (e: unknown) =>
    e instanceof Error && re.test(e.message) && !e.message.includes("\n");
  throws(
    () => syscall.on("getppidd*:entry"),
    oneLine(/^No syscall matches 'getppidd\*'. Did you mean: getppid/),
  );
  throws(() => syscall.on("{read:entry"), oneLine(/'\{' without a '\}'/));
  throws(() => syscall.on("re\nad*:entry"), oneLine(/characters no name has/));
  throws(() => syscall.on("read*:entry", undefined, { buffers: { buf: 8 } }), oneLine(/buffers/));
  for (
    const [pattern, says] of [
      ["blok:*", /^No tracepoint matches 'blok:\*'. Did you mean: block:\*/],
      ["sched:sched_swtch*", /Did you mean: sched:sched_switch\?/],
      ["*:*", new RegExp(`matches \\d+ tracepoints; at most ${MAX_TRACEPOINT_MATCHES}`)],
    ] as const
  ) {
    tracepoint(pattern).count();
    await rejects(run({ duration: "1ms" }), oneLine(says));
  }
});

Deno.test("probe -e takes a syscall pattern, counted by name", async () => {
  await withSyscaller(async (exe) => {
    const r = await probe([
      "-e",
      `syscall.on("getp*:entry").where((e) => e.comm === "syscaller").count((e) => e.syscall)`,
      "-c",
      [exe, ...args].join(" "),
    ]);
    equal(r.code, 0, r.stderr);
    const count = (name: string) =>
      Number(r.stdout.match(new RegExp(`\\[${name}\\]:\\s+(\\d+)`))?.[1]);
    equal([count("getppid"), count("getpid")], [N, M]);
  });
});
