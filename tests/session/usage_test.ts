/**
 * Usage errors of the public API, raised where they are written and before anything loads:
 * sizes and counts of aggregations, spans and run options; lambdas and handlers that are not
 * functions; kernel lambdas too deep or too long for the verifier. Each is one typed line that
 * names the option and says what is accepted.
 *
 * Needs root and libbpf only for the lambda-limit tests, which load what the limits accept.
 */
import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import {
  ArgumentError,
  LambdaError,
  NotAFunctionError,
  run,
  type RunOptions,
  session,
  SizeError,
  span,
  type Stream,
  syscall,
  TargetError,
} from "../../mod.ts";
import { isUsageError, USAGE_ERROR_CLASSES } from "../../runtime/usage.ts";
import { compileLambda } from "../../runtime/lambda/compile.ts";
import { loadParser } from "../../runtime/lambda/parse.ts";
import { MAX_INSTRUCTIONS, MAX_NESTING, MAX_SYNTAX_DEPTH } from "../../runtime/lambda/limits.ts";
import type { FieldResolver } from "../../runtime/lambda/ir.ts";

await loadParser();

/** Sizes no option takes: zero, negative, 2^32, NaN, fractions, infinity, a string. */
const BAD_SIZES: unknown[] = [0, -1, 2 ** 32, NaN, 1.5, Infinity, "8"];

function oneLine(e: unknown, option: string): void {
  ok(isUsageError(e), String(e));
  const message = (e as Error).message;
  ok(!message.includes("\n"), message);
  ok(message.includes(option), `${message} names ${option}`);
}

/** Runs `fn`, expects a one-line usage error naming `option`, and that nothing was added. */
function refused(
  fn: () => unknown,
  option: string,
  kind: typeof SizeError | typeof NotAFunctionError,
) {
  const before = session().size;
  throws(fn, (e) => {
    ok(e instanceof kind, `${e}`);
    oneLine(e, option);
    return true;
  });
  equal(session().size, before, "nothing added to the session");
}

const reads = () => syscall.on("read:return");

/** `run(options)` of a one-probe session rejects with a one-line `type` that names `says`. */
async function refusedRun(
  options: Record<string, unknown>,
  type: abstract new (...args: never[]) => Error,
  says: string,
): Promise<void> {
  syscall.on("getppid:entry", () => {});
  let thrown: unknown;
  try {
    await run(options as RunOptions);
  } catch (e) {
    thrown = e;
  }
  ok(thrown instanceof type, `${JSON.stringify(options)}: ${thrown}`);
  oneLine(thrown, says);
}

Deno.test("aggregation size and top: positive integers up to 2^20, or a SizeError naming them", () => {
  for (const bad of BAD_SIZES) {
    const size = bad as number;
    refused(() => reads().count(undefined, { size }), "size", SizeError);
    refused(() => reads().hist((e) => e.ret, { size }), "size", SizeError);
    refused(() => reads().sum((e) => e.ret, { top: size }), "top", SizeError);
  }
  refused(() => reads().count(undefined, { size: 2 ** 20 + 1 }), "size", SizeError);
});

Deno.test("lhist min, max and step: safe integers, step > 0, min < max, at most 1000 buckets", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ min: 0, max: 100, step: 0 }, "step"],
    [{ min: 0, max: 100, step: -5 }, "step"],
    [{ min: 0, max: 100, step: NaN }, "step"],
    [{ min: 0.5, max: 100, step: 1 }, "min"],
    [{ min: 0, max: 2 ** 64, step: 1 }, "max"],
    [{ min: 0, max: 2 ** 31, step: 1 }, "max"],
    [{ min: 0, max: 100, step: 2 ** 32 }, "step"],
    [{ min: 0, max: 100, step: 101 }, "step"],
    [{ min: 10, max: 10, step: 1 }, "max"],
    [{ min: 0, max: 1_000_000, step: 1 }, "bucket"],
  ];
  for (const [o, option] of cases) {
    refused(
      () => reads().lhist((e) => e.ret, o as { min: number; max: number; step: number }),
      option,
      SizeError,
    );
  }
});

Deno.test("span size: a positive integer up to 2^20, or a SizeError", () => {
  for (const bad of [...BAD_SIZES, 2 ** 20 + 1]) {
    refused(
      () =>
        span(syscall.on("read:entry"), syscall.on("read:return"), {
          key: (e) => e.tid,
          size: bad as number,
        }),
      "size",
      SizeError,
    );
  }
});

Deno.test("syscall buffers: 1 to 4096 bytes, or a SizeError", () => {
  for (const bad of BAD_SIZES) {
    refused(
      () => syscall.on("read:return", undefined, { buffers: { buf: bad as number } }),
      "buf",
      SizeError,
    );
  }
});

Deno.test("run() ringBufferBytes and stringSize: checked before anything loads", async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    ...BAD_SIZES.map((v): [Record<string, unknown>, string] => [{ stringSize: v }, "stringSize"]),
    [{ stringSize: 4097 }, "stringSize"],
    ...BAD_SIZES.map((v): [Record<string, unknown>, string] => [
      { ringBufferBytes: v },
      "ringBufferBytes",
    ]),
    [{ ringBufferBytes: 5000 }, "ringBufferBytes"],
    [{ ringBufferBytes: 2048 }, "ringBufferBytes"],
    [{ ringBufferBytes: 2 ** 31 }, "ringBufferBytes"],
  ];
  for (const [options, option] of cases) {
    await refusedRun({ duration: "10ms", ...options }, SizeError, option);
  }
});

Deno.test("run() comm and command of the wrong shape: an ArgumentError before anything loads", async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ comm: 42 }, "comm"],
    [{ comm: "" }, "comm"],
    [{ command: "ls /" }, "command"],
    [{ command: [] }, "command"],
    [{ command: ["ls", 42] }, "command"],
  ];
  for (const [options, option] of cases) {
    await refusedRun({ duration: "10ms", ...options }, ArgumentError, option);
  }
});

Deno.test("run() command whose program cannot be executed: a TargetError before anything loads", async () => {
  const cases: Array<[string[], string]> = [
    [["no-such-program-xyz", "-x"], "no such program 'no-such-program-xyz'"],
    [["/etc/passwd"], "'/etc/passwd' is not an executable file"],
    [["/tmp"], "'/tmp' is not an executable file"],
    [["./no-such-file"], "no such program './no-such-file'"],
  ];
  for (const [command, says] of cases) await refusedRun({ command }, TargetError, says);
  // `sh` is found in PATH, so this one runs.
  syscall.on("getppid:entry", () => {});
  equal((await run({ command: ["sh", "-c", "exit 4"] })).commandExitCode, 4);
});

Deno.test("a lambda or handler that is not a function is a NotAFunctionError naming its place", () => {
  const s = reads() as Stream<{ ret: number }>;
  // deno-lint-ignore no-explicit-any -- not a function, whatever the type says
  const not = 42 as any;
  refused(() => s.where(not), "where", NotAFunctionError);
  refused(() => s.on(not), "on", NotAFunctionError);
  refused(() => s.count(not), "count", NotAFunctionError);
  refused(() => s.hist(not), "hist", NotAFunctionError);
  refused(() => s.sum((e) => e.ret, { by: not }), "by", NotAFunctionError);
  refused(() => syscall.on("read:return", not), "handler", NotAFunctionError);
  refused(
    () => span(syscall.on("read:entry"), syscall.on("read:return"), { key: not }),
    "key",
    NotAFunctionError,
  );
  refused(
    () => span(syscall.on("read:entry"), syscall.on("read:return"), { key: [] as never }),
    "key",
    NotAFunctionError,
  );
  refused(
    () =>
      span(syscall.on("read:entry"), syscall.on("read:return"), {
        key: (e) => e.tid,
        carry: { fd: not },
      }),
    "carry",
    NotAFunctionError,
  );
});

const INT = { type: { kind: "int", signed: true, bigint: false } } as const;
const resolve: FieldResolver = () => INT;

/** `(e) => e.pid + (e.pid + (... e.pid))`: each level keeps one more operand waiting. */
function nested(depth: number): (e: { pid: number }) => boolean {
  let s = "e.pid";
  for (let i = 0; i < depth; i++) s = `e.pid + (${s})`;
  return eval(`(e) => ${s} > 0`);
}

/** `(e) => e.pid === 1 || e.pid === 2 || ...`, `terms` comparisons. */
function chain(terms: number): (e: { pid: number }) => boolean {
  const body = Array.from({ length: terms }, (_, i) => `e.pid === ${i + 1}`).join(" || ");
  return eval(`(e) => ${body}`);
}

/** `terms` comparisons of a string field with `length`-character constants. */
function strings(terms: number, length: number): (e: { comm: string }) => boolean {
  const body = Array.from(
    { length: terms },
    (_, i) => `e.comm === "${String(i).padEnd(length, "x")}"`,
  )
    .join(" || ");
  return eval(`(e) => ${body}`);
}

function tooBig(fn: () => unknown, says: RegExp): void {
  throws(fn, (e) => {
    ok(e instanceof LambdaError, String(e));
    ok(says.test((e as Error).message), (e as Error).message);
    ok(!(e as Error).message.includes("\n"));
    return true;
  });
}

Deno.test("a kernel lambda nested deeper than the stack allows is a LambdaError saying the limit", () => {
  compileLambda(nested(MAX_NESTING - 1), resolve);
  tooBig(() => compileLambda(nested(64), resolve), new RegExp(`at most ${MAX_NESTING}`));
  tooBig(() => compileLambda(nested(1200), resolve), new RegExp(`at most ${MAX_SYNTAX_DEPTH}`));
});

Deno.test("a kernel lambda too long for the verifier's jumps is a LambdaError saying the limit", () => {
  compileLambda(chain(200), resolve);
  tooBig(() => compileLambda(chain(800), resolve), new RegExp(`at most ${MAX_INSTRUCTIONS}`));
  tooBig(
    () => compileLambda(strings(300, 200), () => ({ type: { kind: "string", size: 256 } })),
    new RegExp(`at most ${MAX_INSTRUCTIONS}`),
  );
  tooBig(() => compileLambda(chain(5000), resolve), new RegExp(`${MAX_SYNTAX_DEPTH}`));
});

Deno.test("what the lambda limits accept loads", async () => {
  // The deepest nesting and the longest chain the limits let through, on a probe whose
  // handler also captures a string (which takes stack too).
  const budget = Math.floor(MAX_INSTRUCTIONS / 13); // a field, a comparison and an ||
  const probe = syscall.on("openat:entry");
  probe.where(nested(MAX_NESTING - 1)).where((e) => e.args.filename.startsWith("/nonexistent/"))
    .on(() => {});
  probe.where(chain(budget)).count((e) => [e.comm, e.args.filename]);
  const summary = await run({ duration: "50ms", printAggregations: false });
  equal(summary.reason, "duration");
});

Deno.test("isUsageError knows every usage error class, their subclasses and a copy's classes by name", async () => {
  const { ProbeNotFoundError } = await import("../../system/tracefs.ts");
  const { UnknownFieldError } = await import("../../runtime/compiler/handler_reads.ts");
  const { DurationError } = await import("../../runtime/duration.ts");
  const { MetricsAddressError } = await import("../../runtime/metrics/address.ts");
  const { NoMatchError } = await import("../../runtime/providers/pattern.ts");
  const classes = [
    LambdaError,
    UnknownFieldError,
    ProbeNotFoundError,
    TargetError,
    DurationError,
    SizeError,
    NotAFunctionError,
    ArgumentError,
  ];
  equal(new Set(classes.map((c) => c.name)), USAGE_ERROR_CLASSES);
  // Subclasses (as a provider's no-match error is a ProbeNotFoundError).
  ok(isUsageError(new MetricsAddressError("x")));
  ok(isUsageError(Object.create(NoMatchError.prototype)));
  // A pinned remote recipe's own copy of the library: the same names, other classes.
  class TargetError2 extends Error {}
  Object.defineProperty(TargetError2, "name", { value: "TargetError" });
  ok(isUsageError(new TargetError2("pid 1: no such process")));
  ok(!isUsageError(new Error("a machine's failure")));
  ok(!isUsageError(new TypeError("x")));
  ok(!isUsageError("TargetError"));
});
