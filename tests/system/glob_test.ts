import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { expandBraces, GlobError, globMatcher, MAX_GLOB_LENGTH } from "../../system/glob.ts";

Deno.test("globMatcher(): * any run, ? one character, {a,b} either, the rest literal", () => {
  const names = ["read", "readv", "pread64", "write", "writev", "getpid", "getppid", "a.b", "a+b"];
  const matching = (glob: string) => names.filter(globMatcher(glob));
  equal(matching("*"), names);
  equal(matching("read*"), ["read", "readv"]);
  equal(matching("*read*"), ["read", "readv", "pread64"]);
  equal(matching("getp?id"), ["getppid"]);
  equal(matching("{read,write}"), ["read", "write"]);
  equal(matching("{read,write}v"), ["readv", "writev"]);
  equal(matching("{get,}p{,p}id"), ["getpid", "getppid"]);
  // Characters regular expressions treat specially are only themselves.
  equal(matching("a.b"), ["a.b"]);
  equal(matching("a+b"), ["a+b"]);
  equal(matching("^read$|.*"), []);
});

Deno.test("globMatcher(): a pattern that backtracks exponentially as a regular expression is quick", () => {
  // As the regular expression listings used to make of it (^.*a.*a...b$), 10 stars took 10 s
  // to fail on 40 a's (V8, Deno 2.9.6), and every 2 more stars about 15 times longer.
  const glob = "*a".repeat(20) + "b";
  const t0 = performance.now();
  ok(!globMatcher(glob)("a".repeat(60)));
  ok(globMatcher(glob)("a".repeat(60) + "b"));
  console.log(`pathological glob: ${(performance.now() - t0).toFixed(1)} ms`);
});

Deno.test("expandBraces() refuses unbalanced, nested, too long and too many alternatives", () => {
  equal(expandBraces("x{a,b}y{c,d}"), ["xayc", "xayd", "xbyc", "xbyd"]);
  for (
    const [glob, says] of [
      ["{a", /'\{' without a '\}'/],
      ["a}", /'\}' without a '\{'/],
      ["{a,{b}}", /nests braces/],
      ["x".repeat(MAX_GLOB_LENGTH + 1), /too long/],
      ["{a,b,c,d,e,f,g,h}".repeat(3), /more than 64 alternatives/],
    ] as const
  ) {
    throws(() => globMatcher(glob), (e) => e instanceof GlobError && says.test(e.message), glob);
  }
});
