/**
 * What a handler reads is checked against the fields its events have: a path no field answers
 * (a misspelled `e.args.filenme`) is an UnknownFieldError from run() before anything loads,
 * naming the probe, the path as written and the close fields; handlers whose reads run deep,
 * past a field into its value, destructure, chain optionally or are shared by several probes
 * still get every event with the right values.
 *
 * Needs root, libbpf and perl.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { run, span, syscall, UnknownFieldError } from "../../mod.ts";
import { isUsageError } from "../../runtime/usage.ts";

/** run() of what `setup` added rejects with a one-line UnknownFieldError saying each of `says`. */
async function refused(setup: () => void, says: string[]): Promise<void> {
  setup();
  let thrown: unknown;
  try {
    await run({ duration: "5s" });
  } catch (e) {
    thrown = e;
  }
  ok(thrown instanceof UnknownFieldError, `${thrown}`);
  ok(isUsageError(thrown));
  const message = (thrown as UnknownFieldError).message;
  ok(!message.includes("\n"), message);
  for (const s of says) ok(message.includes(s), `${message} says ${s}`);
}

Deno.test("a misspelled field in a handler: an UnknownFieldError naming it and the close fields", async () => {
  type Open = { args: { filename: string }; comm: string };
  const cases: Array<[() => void, string[]]> = [
    [
      // @ts-expect-error: misspelled on purpose
      () => syscall.on("openat:entry", (e) => console.log(e.args.filenme)),
      ["syscall:openat:entry", "e.args.filenme", "did you mean args.filename?"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- misspelled on purpose
      () => syscall.on("openat:entry", (ev: any) => console.log(ev.arg.filename)),
      ["ev.arg.filename", "did you mean args.filename?"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- misspelled on purpose
      () => syscall.on("openat:entry", ({ args: { filenme } }: any) => console.log(filenme)),
      ["args.filenme", "did you mean args.filename?"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- misspelled on purpose
      () => syscall.on("openat:entry", (e: any) => console.log(e.args.filenme.slice(1))),
      ["e.args.filenme", "args.filename"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- misspelled on purpose
      () => syscall.on("openat:entry", (e: any) => console.log(e.task.tgdi)),
      ["e.task.tgdi", "task.tgid"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- not on an entry probe
      () => syscall.on("openat:entry", (e: any) => console.log(e.latencyNs)),
      ["e.latencyNs", "its events have", "args"],
    ],
    [
      // deno-lint-ignore no-explicit-any -- misspelled on purpose
      () => syscall.on("openat:entry", (e: any) => console.log(e.args.zzz)),
      ["e.args.zzz", "e.args has", "filename"],
    ],
    [
      () =>
        span(syscall.on("openat:entry"), syscall.on("openat:return"), { key: (e) => e.tid })
          // deno-lint-ignore no-explicit-any -- misspelled on purpose
          .on((e: any) => console.log(e.latencyNS)),
      ["e.latencyNS", "did you mean latencyNs?"],
    ],
    [
      () => {
        // Both probes have it wrong: no field of either answers it.
        const h = (e: Open) => console.log(e.comm, (e as unknown as Open["args"]).filename);
        syscall.on("openat:entry", h);
        syscall.on("openat:return", h);
      },
      ["syscall:openat:entry, syscall:openat:return", "e.filename", "args.filename"],
    ],
  ];
  for (const [setup, says] of cases) await refused(setup, says);
});

Deno.test("handlers reading deep, derived, destructured, optional and shared paths get every event right", async () => {
  const n = 20;
  const prefix = `/tmp/tsprobe-reads-${crypto.randomUUID()}-`;
  const mine = (filename: string | undefined) => filename?.startsWith(prefix) ?? false;
  const entries: Array<[number, string, number, number, string]> = [];
  const destructured: Array<[number, string]> = [];
  const optional: number[] = [];
  const spans: number[] = [];
  const shared: Array<[string, number]> = [];
  syscall.on("openat:entry", (e) => {
    if (!mine(e.args.filename)) return;
    // Past a field into its value, through methods, a BTF field and a constant.
    entries.push([
      e.task.tgid,
      e.args.filename.slice(prefix.length),
      e.comm.length,
      e.pid,
      `${e.probe}`.toUpperCase(),
    ]);
  });
  syscall.on("openat:entry", ({ pid, args: { filename } }) => {
    if (mine(filename)) destructured.push([pid, filename.slice(prefix.length)]);
  });
  syscall.on("openat:entry", (e) => {
    const { args } = e;
    if (mine(args?.filename)) optional.push(args?.filename?.length ?? -1);
  });
  // One handler for an entry and a return probe: `ret` is only on the return's events.
  const both = (e: { probe: string; args: { filename: string }; ret?: number }) => {
    if (mine(e.args.filename)) shared.push([e.probe, e.ret ?? -1]);
  };
  syscall.on("openat:entry", both);
  syscall.on("openat:return", both);
  span(syscall.on("openat:entry"), syscall.on("openat:return"), { key: (e) => e.tid })
    .on((e) => {
      if (mine(e.args.filename)) spans.push(e.latencyNs);
    });
  const script = `open(my $f, "<", "${prefix}$_") for 1..${n}`;
  const summary = await run({ command: ["perl", "-e", script] });
  equal(summary.reason, "command");
  const pid = summary.commandPid!;
  const names = Array.from({ length: n }, (_, i) => `${i + 1}`);
  equal(entries, names.map((f) => [pid, f, 4, pid, "SYSCALL:OPENAT:ENTRY"]));
  equal(destructured, names.map((f) => [pid, f]));
  equal(optional, names.map((f) => prefix.length + f.length));
  // The files do not exist: each open returns -ENOENT.
  equal(
    shared.filter(([p]) => p === "syscall:openat:entry"),
    names.map(() => ["syscall:openat:entry", -1]),
  );
  equal(
    shared.filter(([p]) => p === "syscall:openat:return"),
    names.map(() => ["syscall:openat:return", -2]),
  );
  equal(spans.length, n);
  ok(spans.every((ns) => ns > 0 && ns < 1e9), `${spans}`);
});
