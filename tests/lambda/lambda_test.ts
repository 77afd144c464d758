import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { compileKeyLambda, compileLambda } from "../../runtime/lambda/compile.ts";
import {
  type Expr,
  type FieldInfo,
  type FieldResolver,
  LambdaError,
  type ValueType,
} from "../../runtime/lambda/ir.ts";
import { type AnyFunction, loadParser, parseFunction } from "../../runtime/lambda/parse.ts";
import { eventReads, readsNothing } from "../../runtime/lambda/reads.ts";

await loadParser();

// ---- fixtures -------------------------------------------------------------------------------

const INT: ValueType = { kind: "int", signed: true, bigint: false };
const BIGINT: ValueType = { kind: "int", signed: true, bigint: true };
const U64: ValueType = { kind: "int", signed: false, bigint: true };
const BOOL: ValueType = { kind: "bool" };

const TYPES: Record<string, ValueType> = {
  pid: { kind: "int", signed: false, bigint: false },
  ret: INT,
  comm: { kind: "string", size: 16 },
  "args.fd": INT,
  "args.count": U64,
  "args.addr": BIGINT,
  "args.filename": { kind: "string", size: 64 },
};
const CONSTANTS: Record<string, string | number | boolean> = {
  probe: "openat",
  cpus: 4,
  traced: true,
};

const resolve: FieldResolver = (path): FieldInfo | undefined => {
  const key = path.join(".");
  if (key in TYPES) return { type: TYPES[key] };
  if (key in CONSTANTS) return { constant: CONSTANTS[key] };
  return undefined;
};

/** The event type the TypeScript lambdas below are written against. */
interface Ev {
  pid: number;
  ret: number;
  comm: string;
  args: { fd: number; count: bigint; addr: bigint; filename: string };
}

/** A function with exactly this source (the transpiler reprints TypeScript lambdas). */
const src = (text: string) => new Function(`return (${text}\n);`)() as AnyFunction;

const compile = (fn: AnyFunction | string, params?: Record<string, unknown>) =>
  compileLambda(typeof fn === "string" ? src(fn) : fn, resolve, params).expr;

const field = (path: string): Expr => ({ op: "field", path: path.split("."), type: TYPES[path] });
const num = (value: number | bigint, type: ValueType = INT): Expr => ({
  op: "const",
  value: BigInt(value),
  type,
});
const bool = (value: boolean): Expr => num(value ? 1 : 0, BOOL);
const cmp = (operator: string, left: Expr, right: Expr) =>
  ({ op: "compare", operator, left, right, type: BOOL }) as Expr;
const arith = (operator: string, left: Expr, right: Expr, type = INT) =>
  ({ op: "arith", operator, left, right, type }) as Expr;
const strcmp = (mode: "eq" | "prefix", path: string, value: string): Expr => ({
  op: "strcmp",
  mode,
  field: field(path) as Expr & { op: "field" },
  value,
  type: BOOL,
});
const not = (arg: Expr): Expr => ({ op: "not", arg, type: BOOL });

/** Asserts that compiling `text` fails quoting exactly `snippet`, with `reason` in the message. */
function rejects(
  text: string,
  snippet: string,
  reason: string,
  params?: Record<string, unknown>,
  compileWith: (fn: AnyFunction, r: FieldResolver, p?: Record<string, unknown>) => unknown =
    compileLambda,
) {
  throws(() => compileWith(src(text), resolve, params), (error) => {
    ok(error instanceof LambdaError, `${text}: ${error}`);
    assertEquals(error.snippet, snippet, text);
    ok(error.message.includes(`\`${snippet}\``), error.message);
    ok(error.message.includes(reason), `${text}: expected "${reason}" in: ${error.message}`);
    return true;
  });
}

// ---- parseFunction ------------------------------------------------------------------------

Deno.test("parseFunction() reads arrows, functions and methods, keeping their text", () => {
  const obj = {
    method(e: Ev) {
      return e.pid;
    },
    async *gen() {},
  };
  const cases: [AnyFunction, string][] = [
    [src("(e) => e.pid"), "e.pid"],
    [src("e => e.pid // trailing comment"), "e.pid"],
    [src("function named(e) { return e.pid; }"), "{ return e.pid; }"],
    [obj.method, "{\n      return e.pid;\n    }"],
    [obj.gen, "{}"],
  ];
  for (const [fn, body] of cases) {
    const parsed = parseFunction(fn);
    assertEquals(parsed.source, fn.toString());
    assertEquals(parsed.text(parsed.node.body), body);
  }
});

Deno.test("without the parser loaded, parsing fails loudly, not as 'does not parse' or 'reads all'", async () => {
  // A fresh process: this one has loaded the parser.
  const dir = new URL("../../runtime/lambda/", import.meta.url).href;
  const script = `import { parseFunction } from "${dir}parse.ts";
    import { eventReads } from "${dir}reads.ts";
    for (const f of [() => parseFunction((e) => e.a), () => eventReads((e) => e.a)]) {
      try { f(); console.log("no error"); } catch (e) { console.log(e.constructor.name, e.message); }
    }`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", script], stdout: "piped" })
    .output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assertEquals(
    lines,
    Array(2).fill("Error internal: the lambda parser was not loaded (await loadParser())"),
  );
});

Deno.test("parseFunction() rejects native and bound functions", () => {
  for (const fn of [Math.max, src("(e) => e.pid").bind(null)]) {
    throws(
      () => parseFunction(fn),
      (e) => e instanceof LambdaError && /native or bound/.test(e.message),
    );
  }
});

// ---- compileLambda: forms -----------------------------------------------------------------

Deno.test("compileLambda() accepts arrows, functions, methods and a block with one return", () => {
  const expected = cmp(">", field("pid"), num(1));
  const obj = {
    filter(e: Ev) {
      return e.pid > 1;
    },
  };
  const forms: AnyFunction[] = [
    (e: Ev) => e.pid > 1,
    (e: Ev) => {
      return e.pid > 1;
    },
    function (e: Ev) {
      return e.pid > 1;
    },
    function named(e: Ev) {
      return e.pid > 1;
    },
    obj.filter,
    src("e => e.pid > 1"),
  ];
  for (const fn of forms) {
    const lambda = compileLambda(fn, resolve);
    assertEquals(lambda.expr, expected, fn.toString());
    assertEquals(lambda.source, fn.toString());
  }
});

Deno.test("compileLambda() compiles a lambda without parameters to a constant", () => {
  assertEquals(compile(() => true), bool(true));
});

// ---- operators ----------------------------------------------------------------------------

Deno.test("compileLambda() compiles each arithmetic operator", () => {
  for (const op of ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", ">>>"]) {
    assertEquals(
      compile(`(e) => e.ret ${op} e.args.fd`),
      arith(op, field("ret"), field("args.fd")),
    );
  }
  for (const op of ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]) {
    assertEquals(
      compile(`(e) => e.args.addr ${op} 2n`),
      arith(op, field("args.addr"), num(2, BIGINT), BIGINT),
    );
  }
});

Deno.test("compileLambda() types arithmetic: unsigned only for bigints", () => {
  assertEquals(
    compile((e: Ev) => e.args.count + 1n),
    arith("+", field("args.count"), num(1, BIGINT), U64),
  );
  // A u32 number minus 10 may be negative in JavaScript: the result is signed.
  assertEquals(compile((e: Ev) => e.pid - 10), arith("-", field("pid"), num(10)));
  assertEquals(
    compile("(e) => (e.ret > 0) + 1"),
    arith("+", cmp(">", field("ret"), num(0)), num(1)),
  );
  rejects(
    "(e) => e.ret + e.args.addr",
    "e.ret + e.args.addr",
    "mixes bigint and number; use BigInt(x) or Number(x)",
  );
  rejects("(e) => (e.ret > 0) + 1n", "(e.ret > 0) + 1n", "mixes bigint and number");
  rejects("(e) => e.args.count >>> 1n", "e.args.count >>> 1n", ">>> throws on bigints");
});

Deno.test("compileLambda() compiles each comparison, bigint against number included", () => {
  const ops: [string, string][] = [
    ["<", "<"],
    ["<=", "<="],
    [">", ">"],
    [">=", ">="],
    ["==", "=="],
    ["!=", "!="],
    ["===", "=="],
    ["!==", "!="],
  ];
  for (const [js, ir] of ops) {
    assertEquals(compile(`(e) => e.ret ${js} e.args.fd`), cmp(ir, field("ret"), field("args.fd")));
  }
  assertEquals(compile("(e) => e.args.addr < 5"), cmp("<", field("args.addr"), num(5)));
  assertEquals(compile("(e) => e.args.addr == 5"), cmp("==", field("args.addr"), num(5)));
  assertEquals(
    compile("(e) => (e.ret > 0) == 1"),
    cmp("==", cmp(">", field("ret"), num(0)), num(1)),
  );
});

Deno.test("compileLambda() rejects === that JavaScript never finds true", () => {
  rejects("(e) => e.args.addr === 0", "e.args.addr === 0", "compares a bigint with a number");
  rejects("(e) => e.args.count !== e.ret", "e.args.count !== e.ret", "use BigInt(x) or Number(x)");
  rejects("(e) => (e.ret > 0) === 1", "(e.ret > 0) === 1", "compares a boolean with a number");
});

Deno.test("compileLambda() compiles && || ! on booleans and integers", () => {
  const a = cmp(">", field("ret"), num(0));
  assertEquals(compile((e: Ev) => e.ret > 0 && e.pid !== 1), {
    op: "and",
    left: a,
    right: cmp("!=", field("pid"), num(1)),
    type: BOOL,
  });
  assertEquals(compile((e: Ev) => e.ret || e.args.fd), {
    op: "or",
    left: field("ret"),
    right: field("args.fd"),
    type: BOOL,
  });
  assertEquals(compile((e: Ev) => !e.ret), not(field("ret")));
  assertEquals(compile((e: Ev) => !(e.ret > 0)), not(a));
  rejects("(e) => e.ret ?? 1", "e.ret ?? 1", "?? is not supported");
});

Deno.test("compileLambda() compiles unary - ~ + and keeps bigint types", () => {
  assertEquals(compile((e: Ev) => -e.ret), { op: "neg", arg: field("ret"), type: INT });
  assertEquals(compile((e: Ev) => ~e.pid), { op: "bitnot", arg: field("pid"), type: INT });
  assertEquals(compile((e: Ev) => -e.args.count), {
    op: "neg",
    arg: field("args.count"),
    type: U64,
  });
  assertEquals(compile((e: Ev) => +e.ret), field("ret"));
  assertEquals(compile("(e) => +(e.ret > 0)"), arith("+", cmp(">", field("ret"), num(0)), num(0)));
  rejects("(e) => +e.args.addr", "+e.args.addr", "unary + throws on a bigint");
  rejects("(e) => typeof e.ret", "typeof e.ret", "`typeof` is not supported");
});

Deno.test("compileLambda() compiles ?: and joins the branch types", () => {
  assertEquals(compile((e: Ev) => (e.ret ? e.args.count : 0n)), {
    op: "cond",
    test: field("ret"),
    then: field("args.count"),
    else: num(0, BIGINT),
    type: U64,
  });
  assertEquals(compile((e: Ev) => (e.ret > 0 ? e.pid > 1 : false)), {
    op: "cond",
    test: cmp(">", field("ret"), num(0)),
    then: cmp(">", field("pid"), num(1)),
    else: bool(false),
    type: BOOL,
  });
  rejects("(e) => e.ret ? 1 : true", "e.ret ? 1 : true", "branches of ?: must both be numbers");
  rejects("(e) => e.ret ? 1 : 2n", "e.ret ? 1 : 2n", "mixes bigint and number");
  rejects("(e) => e.comm ? 1 : 2", "e.comm", "a string cannot be used as a number or a boolean");
});

// ---- strings ------------------------------------------------------------------------------

Deno.test("compileLambda() compares strings with constants either way round", () => {
  assertEquals(compile((e: Ev) => e.comm === "bash"), strcmp("eq", "comm", "bash"));
  assertEquals(compile((e: Ev) => "bash" === e.comm), strcmp("eq", "comm", "bash"));
  assertEquals(compile("(e) => e.comm == 'bash'"), strcmp("eq", "comm", "bash"));
  assertEquals(compile((e: Ev) => e.comm !== "sshd"), not(strcmp("eq", "comm", "sshd")));
  assertEquals(compile("(e) => e.comm != 'sshd'"), not(strcmp("eq", "comm", "sshd")));
  assertEquals(compile((e: Ev) => e.comm.startsWith("ba")), strcmp("prefix", "comm", "ba"));
  assertEquals(compile((e: Ev) => e.comm.startsWith("")), bool(true));
  assertEquals(
    compile((e: Ev, p: { dir: string }) => e.args.filename.startsWith(p.dir), { dir: "/etc/" }),
    strcmp("prefix", "args.filename", "/etc/"),
  );
  // 15 bytes is all that a 16-byte comm holds.
  assertEquals(
    compile((e: Ev) => e.comm === "abcdefghijklmno"),
    strcmp("eq", "comm", "abcdefghijklmno"),
  );
});

Deno.test("compileLambda() folds comparisons of constant strings", () => {
  assertEquals(compile("(e) => e.probe === 'openat'"), bool(true));
  assertEquals(compile("(e) => e.probe !== 'openat'"), bool(false));
  assertEquals(compile("(e) => e.probe.startsWith('open')"), bool(true));
  assertEquals(compile((_e: Ev, p: { s: string }) => p.s === "x", { s: "y" }), bool(false));
});

Deno.test("compileLambda() rejects what strings cannot do in the kernel", () => {
  rejects("(e) => e.comm === e.args.filename", "e.comm === e.args.filename", "two string fields");
  rejects("(e) => e.comm < 'b'", "e.comm < 'b'", "strings cannot be ordered");
  rejects("(e) => e.comm + 'x' === 'ax'", "e.comm + 'x'", "concatenation are not supported");
  rejects("(e) => `${e.comm}` === 'x'", "`${e.comm}`", "template literals are not supported");
  rejects("(e) => e.comm && e.ret > 0", "e.comm", "a string cannot be used as a number");
  rejects("(e) => e.comm", "e.comm", "a string cannot be used as a number");
  rejects("(e) => Number(e.comm) > 1", "e.comm", "a string cannot be used as a number");
  rejects("(e) => e.comm === 1", "e.comm === 1", "compares a string with something that is not");
  rejects(
    "(e) => e.comm === 'abcdefghijklmnop'",
    "e.comm === 'abcdefghijklmnop'",
    '"abcdefghijklmnop" is 16 bytes, but `comm` holds at most 15',
  );
  rejects("(e) => e.comm.startsWith(e.comm)", "e.comm.startsWith(e.comm)", "constant string");
  rejects("(e) => e.ret.startsWith('a')", "e.ret.startsWith('a')", "startsWith() needs a string");
  rejects("(e) => e.comm.includes('a')", "e.comm.includes('a')", "only startsWith() and ===");
  rejects("(e) => e.comm.endsWith('a')", "e.comm.endsWith('a')", "calling `e.comm.endsWith`");
  rejects(
    "(e) => e.comm.length > 1",
    "e.comm.length",
    "event field `comm` has no property `length`",
  );
});

// ---- includes -----------------------------------------------------------------------------

Deno.test("compileLambda() turns includes() into a chain of comparisons", () => {
  assertEquals(compile((e: Ev) => ["bash", "sh"].includes(e.comm)), {
    op: "or",
    left: strcmp("eq", "comm", "bash"),
    right: strcmp("eq", "comm", "sh"),
    type: BOOL,
  });
  const ints = {
    op: "or",
    left: {
      op: "or",
      left: cmp("==", num(1), field("pid")),
      right: cmp("==", num(2), field("pid")),
      type: BOOL,
    },
    right: cmp("==", num(3), field("pid")),
    type: BOOL,
  };
  assertEquals(compile((e: Ev) => [1, 2, 3].includes(e.pid)), ints);
  assertEquals(
    compile((e: Ev, p: { pids: number[] }) => p.pids.includes(e.pid), { pids: [1, 2, 3] }),
    ints,
  );
  assertEquals(
    compile((e: Ev, p: { names: string[] }) => p.names.includes(e.comm), { names: ["sh"] }),
    strcmp("eq", "comm", "sh"),
  );
  assertEquals(compile((e: Ev) => ([] as number[]).includes(e.pid)), bool(false));
  assertEquals(
    compile((e: Ev) => [-1n].includes(e.args.addr)),
    cmp("==", num(-1, BIGINT), field("args.addr")),
  );
  assertEquals(compile(() => ["a", "b"].includes("b")), bool(true));
});

Deno.test("compileLambda() rejects includes() that JavaScript would not match", () => {
  rejects(
    "(e) => [1].includes(e.args.addr)",
    "[1].includes(e.args.addr)",
    "compares a number with a bigint",
  );
  rejects(
    "(e) => ['a', 1].includes(e.comm)",
    "['a', 1].includes(e.comm)",
    "compares a string with something",
  );
  rejects(
    "(e) => [[1]].includes(e.pid)",
    "[[1]].includes(e.pid)",
    "arrays can only be used with .includes()",
  );
  rejects("(e) => e.pid.includes(1)", "e.pid.includes(1)", "includes() needs an array");
  rejects("(e) => [1].includes(e.pid, 1)", "[1].includes(e.pid, 1)", "takes 1 argument");
  rejects("(e) => [1, , 2].includes(e.pid)", "[1, , 2]", "holes");
  rejects("(e) => [...[1]].includes(e.pid)", "...[1]", "spread (...) is not supported");
  rejects("(e) => [1, 2] > 1", "[1, 2]", "arrays can only be used with .includes()");
});

// ---- builtins -----------------------------------------------------------------------------

Deno.test("compileLambda() compiles Math.min/max/abs/trunc, Number() and BigInt()", () => {
  assertEquals(compile((e: Ev) => Math.min(e.ret, e.args.fd, 7)), {
    op: "min",
    args: [field("ret"), field("args.fd"), num(7)],
    type: INT,
  });
  assertEquals(compile((e: Ev) => Math.max(e.ret, 0)), {
    op: "max",
    args: [field("ret"), num(0)],
    type: INT,
  });
  assertEquals(compile((e: Ev) => Math.max(e.ret)), field("ret"));
  assertEquals(compile((e: Ev) => Math.abs(e.ret)), { op: "abs", arg: field("ret"), type: INT });
  assertEquals(compile((e: Ev) => Math.trunc(e.ret / 2)), arith("/", field("ret"), num(2)));
  assertEquals(compile((e: Ev) => Number(e.ret)), field("ret"));
  const u64AsNumber: ValueType = { kind: "int", signed: false, bigint: false };
  assertEquals(
    compile((e: Ev) => Number(e.args.count)),
    arith("+", field("args.count"), num(0, u64AsNumber), u64AsNumber),
  );
  assertEquals(compile((e: Ev) => BigInt(e.pid)), arith("+", field("pid"), num(0, BIGINT), BIGINT));
  assertEquals(compile((e: Ev) => BigInt(e.args.count)), field("args.count"));
  assertEquals(
    compile((e: Ev) => BigInt(e.ret) + e.args.addr),
    arith("+", arith("+", field("ret"), num(0, BIGINT), BIGINT), field("args.addr"), BIGINT),
  );
});

Deno.test("compileLambda() rejects other calls and misused builtins", () => {
  rejects("(e) => foo(e.pid)", "foo(e.pid)", "calling `foo` is not supported");
  rejects("(e) => Math.floor(e.pid)", "Math.floor(e.pid)", "calling `Math.floor`");
  rejects(
    "(e) => Math.min(e.args.addr, 1n)",
    "Math.min(e.args.addr, 1n)",
    "Math.min() throws on bigints",
  );
  rejects("(e) => Math.abs()", "Math.abs()", "Math.abs() takes 1 argument(s)");
  rejects("(e) => Math.max()", "Math.max()", "takes at least 1 argument(s)");
  rejects("(e) => Math.max(...[1])", "...[1]", "spread (...) is not supported");
  rejects("(e) => Math.PI > e.pid", "Math.PI", "the global `Math` is not available");
  rejects(
    "(e) => e.pid === undefined",
    "e.pid === undefined",
    "undefined can only be compared (=== or !==) with a field that may be unknown",
  );
  rejects("(e) => e.pid + undefined", "undefined", "undefined can only be compared");
});

Deno.test("compileLambda() lets parameters shadow builtin names", () => {
  rejects("(e, { Number }) => Number(1) > 0", "Number(1)", "calling `Number` is not supported", {
    Number: 1,
  });
});

// ---- destructuring and params -------------------------------------------------------------

Deno.test("compileLambda() resolves destructured event fields, nested too", () => {
  assertEquals(compile(({ pid, args: { fd } }: Ev) => pid > 1 && fd === 3), {
    op: "and",
    left: cmp(">", field("pid"), num(1)),
    right: cmp("==", field("args.fd"), num(3)),
    type: BOOL,
  });
  assertEquals(compile("({ args }) => args.fd > 1"), cmp(">", field("args.fd"), num(1)));
  assertEquals(compile("({ 'comm': c }) => c === 'sh'"), strcmp("eq", "comm", "sh"));
});

Deno.test("compileLambda() inlines params of each kind, destructured too", () => {
  const params = {
    limit: 5,
    big: 1n << 40n,
    on: true,
    name: "sh",
    pids: [1],
    nested: { depth: 2 },
  };
  assertEquals(
    compile((e: Ev, p: typeof params) => e.ret > p.limit, params),
    cmp(">", field("ret"), num(5)),
  );
  assertEquals(
    compile((e: Ev, p: typeof params) => e.args.addr > p.big, params),
    cmp(">", field("args.addr"), num(1n << 40n, BIGINT)),
  );
  assertEquals(
    compile((e: Ev, p: typeof params) => p.on && e.ret > 0, params),
    cmp(">", field("ret"), num(0)),
  );
  assertEquals(
    compile((e: Ev, p: typeof params) => e.comm === p.name, params),
    strcmp("eq", "comm", "sh"),
  );
  assertEquals(
    compile((e: Ev, p: typeof params) => p.pids.includes(e.pid), params),
    cmp("==", num(1), field("pid")),
  );
  assertEquals(
    compile((e: Ev, p: typeof params) => e.ret > p.nested.depth, params),
    cmp(">", field("ret"), num(2)),
  );
  assertEquals(
    compile((e: Ev, { limit, nested: { depth } }: typeof params) => e.ret > limit * depth, params),
    cmp(">", field("ret"), num(10)),
  );
  assertEquals(
    compile((e: Ev, p: { max: bigint }) => e.args.count < p.max, { max: (1n << 64n) - 1n }),
    cmp("<", field("args.count"), num((1n << 64n) - 1n, U64)),
  );
});

Deno.test("compileLambda() rejects params it cannot inline", () => {
  rejects("(e, p) => e.ret > p.limit", "p.limit", "param `limit` is 1.5, not an integer", {
    limit: 1.5,
  });
  rejects("(e, p) => e.ret > p.limt", "p.limt", "no param `limt` (did you mean limit?)", {
    limit: 1,
  });
  rejects("(e, p) => e.ret > p.a.c", "p.a.c", "no param `a.c`", { a: { b: 1 } });
  rejects("(e, p) => e.ret > p.x", "p.x", "no params were given");
  rejects("(e, p) => e.ret > p", "p", "the params object itself is not a value", {});
  rejects("(e, p) => e.ret > p.o", "p.o", "param `o` is object", { o: { a: 1 } });
  rejects("(e, p) => e.ret > p.u", "p.u", "param `u` is undefined", { u: undefined });
  rejects("(e, p) => p.l.includes(e.pid)", "p.l", "param `l`[0] is a nested array", { l: [[1]] });
  rejects("(e, p) => e.ret > p.n", "p.n", "param `n` is 1e+21, beyond 64 bits", { n: 1e21 });
  rejects("(e, p) => e.args.addr > p.n", "p.n", "beyond 64 bits", { n: 1n << 64n });
  rejects("(e, p) => e.ret > p.s", "e.ret > p.s", "strings cannot be ordered", { s: "x" });
  rejects("(e, p) => p.s && e.ret > 0", "p.s", "a string cannot be used as a number", { s: "x" });
});

// ---- folding ------------------------------------------------------------------------------

Deno.test("compileLambda() folds constants with 64-bit kernel semantics", () => {
  const cases: [string, Expr][] = [
    ["7 / 2", num(3)],
    ["-7 / 2", num(-3)],
    ["-7 % 2", num(-1)],
    ["7 / 0", num(0)],
    ["7 % 0", num(7)],
    ["6 & 3", num(2)],
    ["6 | 3", num(7)],
    ["6 ^ 3", num(5)],
    ["1 << 65", num(2)],
    ["-8 >> 1", num(-4)],
    ["-1 >>> 60", num(15)],
    ["1_000_000 * 1000", num(1_000_000_000)],
    ["9223372036854775807n + 1n", num(-(1n << 63n), BIGINT)],
    ["0xffffffffffffffffn", num((1n << 64n) - 1n, U64)],
    ["0xffffffffffffffffn + 1n", num(0, U64)],
    ["0xffffffffffffffffn > 0n", bool(true)],
    ["-1n < 0n", bool(true)],
    ["3 >= 3", bool(true)],
    ["3 != 3", bool(false)],
    ["-(3)", num(-3)],
    ["~5", num(-6)],
    ["!0", bool(true)],
    ["+true", num(1)],
    ["true + 1", num(2)],
    ["1 && 0", bool(false)],
    ["2 || 0", bool(true)],
    ["2 && 3", bool(true)],
    ["true ? 1 : 2", num(1)],
    ["0 ? 1n : 2n", num(2, BIGINT)],
    ["Math.min(3, 1, 2)", num(1)],
    ["Math.max(3, 1, 2)", num(3)],
    ["Math.abs(-4)", num(4)],
    ["Math.trunc(5)", num(5)],
    ["Number(5n)", num(5)],
    ["BigInt(5)", num(5, BIGINT)],
    ["BigInt(true)", num(1, BIGINT)],
  ];
  for (const [text, expected] of cases) assertEquals(compile(`() => ${text}`), expected, text);
});

Deno.test("compileLambda() folds around constant fields, params and logic", () => {
  assertEquals(compile("(e) => e.cpus * 2"), num(8));
  assertEquals(compile("(e) => e.traced"), bool(true));
  const pos = cmp(">", field("ret"), num(0));
  assertEquals(
    compile((e: Ev, p: { on: boolean }) => p.on && e.ret > 0, { on: false }),
    bool(false),
  );
  assertEquals(compile((e: Ev, p: { on: boolean }) => p.on || e.ret > 0, { on: true }), bool(true));
  assertEquals(compile((e: Ev, p: { on: boolean }) => p.on || e.ret > 0, { on: false }), pos);
  assertEquals(compile((e: Ev) => e.ret > 0 && true), pos);
  assertEquals(compile((e: Ev) => e.ret > 0 && false), bool(false));
  // A number operand keeps the node: `true && x` is the truth of x.
  assertEquals(compile("(e) => true && e.ret"), {
    op: "and",
    left: bool(true),
    right: field("ret"),
    type: BOOL,
  });
  assertEquals(
    compile((e: Ev, p: { on: boolean }) => (p.on ? e.ret : 0), { on: true }),
    field("ret"),
  );
  assertEquals(compile((e: Ev) => e.ret > 2 * 3 + 1), cmp(">", field("ret"), num(7)));
});

// ---- literals and other errors ------------------------------------------------------------

Deno.test("compileLambda() checks literals", () => {
  assertEquals(compile("() => 10n"), num(10, BIGINT));
  assertEquals(compile("() => 0x10"), num(16));
  rejects("(e) => e.ret > 1.5", "1.5", "the literal is 1.5, not an integer");
  rejects("(e) => e.ret > 1e19", "1e19", "beyond 64 bits");
  rejects("(e) => e.args.count > 18446744073709551616n", "18446744073709551616n", "beyond 64 bits");
  rejects("(e) => e.ret === null", "null", "the literal is null");
  rejects("(e) => e.comm === /ab/", "/ab/", "regular expressions are not supported");
});

Deno.test("compileLambda() names unknown fields, event properties and free variables", () => {
  rejects("(e) => e.args.fdd > 1", "e.args.fdd", "no such event field `args.fdd`");
  rejects("(e) => e.pid.x > 1", "e.pid.x", "event field `pid` has no property `x`");
  rejects("({ args: { nope } }) => nope > 1", "nope", "no such event field `args.nope`");
  rejects(
    "(e) => e.pid > limit",
    "limit",
    "`limit` is not a field or a param; pass it through params: .where((e, p) => ..., { limit })",
  );
  rejects("(e) => e", "e", "the event itself is not a value");
  rejects("(e) => e[k]", "e[k]", "computed member access is not supported");
  rejects("(e) => e.args[0] > 1", "e.args[0]", "computed member access is not supported");
  assertEquals(compile("(e) => e['pid'] > 1"), cmp(">", field("pid"), num(1)));
});

Deno.test("compileLambda() rejects each construct the kernel cannot run", () => {
  const cases: [string, string, string][] = [
    [
      "(e) => { for (const x of []) {} return 1; }",
      "for (const x of []) {}",
      "loops are not supported",
    ],
    ["(e) => { while (e.pid) {} }", "while (e.pid) {}", "loops are not supported"],
    [
      "(e) => { const x = e.pid; return x > 1; }",
      "const x = e.pid;",
      "exactly one `return <expression>;`",
    ],
    ["(e) => {}", "{}", "exactly one `return"],
    ["(e) => { return; }", "{ return; }", "exactly one `return"],
    ["(e) => (e.pid = 1)", "e.pid = 1", "assignments are not allowed"],
    ["(e) => e.pid++", "e.pid++", "++ and -- are not allowed"],
    ["(e) => new Date() > 1", "new Date()", "`new` is not supported"],
    ["(e) => this > 1", "this", "`this` is not available"],
    ["(e) => this.x > 1", "this.x", "properties can only be read from the event and the params"],
    ["(e) => ({ a: 1 })", "{ a: 1 }", "object literals are not supported"],
    ["(e) => e?.pid > 1", "e?.pid", "optional chaining (?.) is not supported"],
    ["async (e) => await e.pid", "async (e) => await e.pid", "async functions are not supported"],
    [
      "function* (e) { yield 1; }",
      "function* (e) { yield 1; }",
      "generator functions are not supported",
    ],
    ["(e) => (e.pid, 1)", "e.pid, 1", "comma sequences are not supported"],
    [
      "(e) => [() => 1].includes(e.pid)",
      "() => 1",
      "functions cannot be defined inside a kernel lambda",
    ],
    ["(e) => (function () {})", "function () {}", "functions cannot be defined"],
    ["(e) => 2 ** 3", "2 ** 3", "`**` is not supported"],
    ["(e) => 'pid' in e", "'pid' in e", "`in` is not supported"],
    ["(e) => void e.pid", "void e.pid", "`void` is not supported"],
    ["(e) => e.x`a`", "e.x`a`", "template literals are not supported"],
    ["(e) => (1 + 2).x", "(1 + 2).x", "properties can only be read"],
    ["(e, p, q) => 1", "q", "at most two parameters"],
    ["(...a) => 1", "...a", "only object destructuring"],
    ["([a]) => a", "[a]", "only object destructuring"],
    ["({ pid = 1 }) => pid", "pid = 1", "default values are not supported"],
    ["({ ...rest }) => 1", "...rest", "rest elements are not supported"],
    ["({ [k]: v }) => v", "[k]: v", "computed keys are not supported"],
  ];
  for (const [text, snippet, reason] of cases) rejects(text, snippet, reason);
});

Deno.test("compileLambda() rejects native and bound functions", () => {
  throws(() => compileLambda(Math.max, resolve), /native or bound function/);
  throws(() => compileLambda(src("(e) => e.pid").bind(null), resolve), LambdaError);
});

// ---- compileKeyLambda ---------------------------------------------------------------------

Deno.test("compileKeyLambda() gives one part per array element, string fields included", () => {
  const key = compileKeyLambda((e: Ev) => [e.comm, e.args.fd], resolve);
  assertEquals(key.parts, [field("comm"), field("args.fd")]);
  assertEquals(compileKeyLambda((e: Ev) => e.comm, resolve).parts, [field("comm")]);
  assertEquals(compileKeyLambda((e: Ev) => e.ret > 0, resolve).parts, [
    cmp(">", field("ret"), num(0)),
  ]);
  assertEquals(
    compileKeyLambda((e: Ev, p: { shift: number }) => [e.pid >> p.shift], resolve, { shift: 2 })
      .parts,
    [arith(">>", field("pid"), num(2))],
  );
});

Deno.test("compileKeyLambda() rejects string constants and empty keys", () => {
  const key = (text: string, snippet: string, reason: string) =>
    rejects(text, snippet, reason, undefined, compileKeyLambda);
  key("(e) => [e.comm, 'x']", "'x'", "a string constant cannot be a key part");
  key("(e) => e.probe", "e.probe", "a string constant cannot be a key part");
  key("(e) => []", "[]", "a key needs at least one part");
  key("(e) => [[e.pid]]", "[e.pid]", "arrays can only be used with .includes()");
  key("(e) => [...e.list]", "...e.list", "spread (...) is not supported");
});

Deno.test("compileKeyLambda() names the parts: as an object names them, else after fields", () => {
  const named = compileKeyLambda((e: Ev) => ({ who: e.comm, fd: e.args.fd }), resolve);
  assertEquals(named.parts, [field("comm"), field("args.fd")]);
  assertEquals(named.names, ["who", "fd"]);
  const names = (fn: AnyFunction) => compileKeyLambda(fn, resolve).names;
  assertEquals(names((e: Ev) => e.comm), ["comm"]);
  assertEquals(names((e: Ev) => [e.pid, e.args.fd]), ["pid", "fd"]);
  assertEquals(names((e: Ev) => e.ret > 0), ["key"]);
  assertEquals(names((e: Ev) => [e.pid, e.ret & 1]), ["pid", "key2"]);
  assertEquals(names(src("(e) => [e.pid, e.pid]")), ["pid", "pid2"]);
  assertEquals(names(src("(e) => ({ 'a b': e.pid })")), ["a b"]);
  const key = (text: string, snippet: string, reason: string) =>
    rejects(text, snippet, reason, undefined, compileKeyLambda);
  key("(e) => ({ ...e })", "...e", "spread (...) is not supported");
  key("(e) => ({ [e.comm]: e.pid })", "[e.comm]: e.pid", "a named key part is `name: expression`");
  key("(e) => ({ pid })", "pid", "a named key part is `name: expression`");
  key("(e) => ({ a: e.pid, a: e.ret })", "a: e.ret", "the key part 'a' is named twice");
  key("(e) => ({})", "{}", "a key needs at least one part");
});

// ---- eventReads ---------------------------------------------------------------------------

const reads = (text: string) => eventReads(src(text));

Deno.test("eventReads() lists the static member chains of the event", () => {
  assertEquals(eventReads((e: Ev) => console.log(e.comm, e.args.filename)), [
    ["comm"],
    ["args", "filename"],
  ]);
  assertEquals(reads("(e) => e.args.filename.length"), [["args", "filename", "length"]]);
  assertEquals(reads("(e) => e['comm'] + e.comm"), [["comm"]]);
  assertEquals(reads("(e) => e?.args?.fd"), [["args", "fd"]]);
  assertEquals(reads("(e) => setTimeout(() => log(e.pid))"), [["pid"]]);
  assertEquals(reads("(e, n = e.ret) => n"), [["ret"]]);
});

Deno.test("eventReads() reports a path once, and not under another path", () => {
  assertEquals(reads("(e) => [e.args.fd, e.comm, e.args, e.comm]"), [["comm"], ["args"]]);
  assertEquals(reads("(e) => { const a = e.args; use(a.fd); }"), [["args"]]);
  assertEquals(reads("(e) => e.args[k]"), [["args"]]);
});

Deno.test("eventReads() drops a called method from the path", () => {
  assertEquals(reads("(e) => e.comm.trim()"), [["comm"]]);
  assertEquals(reads("(e) => e.args.filename.endsWith('x')"), [["args", "filename"]]);
  assertEquals(reads("(e) => e.foo()"), "all");
  assertEquals(reads("(e) => e?.foo()"), "all");
  assertEquals(reads("(e) => e.fmt`x`"), "all");
});

Deno.test("eventReads() follows destructuring, of the parameter or of a variable", () => {
  assertEquals(reads("({ pid, args: { fd } }) => pid + fd"), [["pid"], ["args", "fd"]]);
  assertEquals(reads("({ pid = 0, 'comm': c }) => pid"), [["pid"], ["comm"]]);
  assertEquals(reads("({ argv: [a] }) => a"), [["argv"]]);
  assertEquals(reads("({}) => 1"), []);
  assertEquals(reads("(e) => { const { comm, args: { fd } } = e; }"), [["comm"], ["args", "fd"]]);
  assertEquals(reads("(e) => { const { fd, ...rest } = e.args; }"), [["args"]]);
  assertEquals(reads("({ ...rest }) => rest"), "all");
  assertEquals(reads("({ [k]: v }) => v"), "all");
  assertEquals(reads("(e) => { const { ...rest } = e; }"), "all");
});

Deno.test("eventReads() reads nothing without a parameter, or without using it", () => {
  assertEquals(reads("() => console.log('hi')"), []);
  assertEquals(reads("(e) => 1"), []);
  assertEquals(reads("(e) => ({ e: 1, x: x.e })"), []);
  assertEquals(reads("(e) => { e: for (;;) break e; }"), []);
});

Deno.test("eventReads() gives up on uses other than member chains", () => {
  const all = [
    "(e) => use(e)",
    "(e) => e[k]",
    "(e) => ({ ...e })",
    "(e) => { const x = e; }",
    "(e) => { return e; }",
    "(e) => JSON.stringify(e)",
    "(e) => Object.keys(e)",
    "(e) => ({ e })",
    "(e) => typeof e",
    "(e) => { e = 1; }",
    "function (e) { return arguments[0].pid; }",
    "({ pid }) => eval('pid')",
    "function (e) { with (e) { return pid; } }",
    "([a]) => a",
    "(...args) => args",
  ];
  for (const text of all) assertEquals(reads(text), "all", text);
  assertEquals(eventReads(Math.max), "all");
  assertEquals(eventReads(src("(e) => e.pid").bind(null)), "all");
});

Deno.test("eventReads() skips code where an inner declaration hides the event", () => {
  const cases: [string, string[][]][] = [
    ["(e) => items.map((e) => e.x)", []],
    ["(e) => items.map(({ e }) => e.x).concat(e.comm)", [["comm"]]],
    ["(e) => { function f(e) { return e.x; } return e.pid; }", [["pid"]]],
    ["(e) => { try { f(); } catch (e) { log(e.message); } log(e.comm); }", [["comm"]]],
    ["(e) => { { let e = 1; log(e.x); } log(e.pid); }", [["pid"]]],
    ["(e) => { { class e {} log(e.x); } }", []],
    ["(e) => { for (const e of list) log(e.x); log(e.pid); }", [["pid"]]],
    ["(e) => (function e() { return e.name; })", []],
    ["(e) => ({ m(e) { return e.x; } }, e.pid)", [["pid"]]],
    ["(e) => class { m(e) { return e.x; } }", []],
  ];
  for (const [text, expected] of cases) assertEquals(reads(text), expected, text);
});

Deno.test("eventReads() gives up where hiding is too subtle to follow", () => {
  const all = [
    "(e) => { var e = 1; }",
    "(e) => { function e() {} }",
    "(e) => { { function e() {} } log(e.pid); }",
    "(e) => { switch (e.x) { case 1: let e = 2; } }",
    "(e) => items.forEach(function () { var e = arguments; })",
  ];
  for (const text of all) assertEquals(reads(text), "all", text);
});

Deno.test("eventReads() reads methods and functions like arrows", () => {
  const obj = {
    handle(e: Ev) {
      console.log(e.pid);
    },
  };
  assertEquals(eventReads(obj.handle), [["pid"]]);
  assertEquals(
    eventReads(function (e: Ev) {
      console.log(e.ret);
    }),
    [["ret"]],
  );
  assertEquals(eventReads(async (e: Ev) => await Promise.resolve(e.comm)), [["comm"]]);
});

Deno.test("readsNothing() knows parameterless arrows need no parse", () => {
  ok(readsNothing(() => 1));
  ok(!readsNothing((e: unknown) => e));
  ok(
    !readsNothing(function () {
      return arguments[0];
    }),
  );
});

Deno.test("compileKeyLambda() keeps a namer's argument in the kernel and names the part after it", async () => {
  const { syscallName } = await import("../../runtime/providers/syscall_numbers.ts");
  const key = compileKeyLambda(src("(e) => [e.comm, syscallName(e.pid)]"), resolve);
  assertEquals(key.parts, [field("comm"), field("pid")]);
  assertEquals(key.names, ["comm", "syscall"]);
  assertEquals(key.namers[1]?.name(110), syscallName(110));
  assertEquals(key.namers[0], undefined);
  rejects(
    "(e) => syscallName(e.pid, 1)",
    "syscallName(e.pid, 1)",
    "syscallName() takes one key value",
    undefined,
    compileKeyLambda,
  );
});
