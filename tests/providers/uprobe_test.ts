/**
 * uprobe and uretprobe against programs compiled here with gcc: a PIE executable calling a
 * function of its own and one of a shared library N times, with known arguments and returns.
 */
import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { run, uprobe, uretprobe } from "../../mod.ts";
import { listProbes } from "../../runtime/listing.ts";

const N = 200;

const LIBRARY = `
long tsp_mul(long x) { return x * 7; }
`;
const PROGRAM = `
#include <stdlib.h>
#include <unistd.h>
long tsp_mul(long x);
__attribute__((noinline)) long tsp_add(long a, long b) { return a + b + 1; }
__attribute__((noinline)) long tsp_len(const char *s) { long n = 0; while (s[n]) n++; return n; }
int main(int argc, char **argv) {
  long n = atol(argv[1]), sum = 0;
  for (long i = 0; i < n; i++) sum += tsp_add(i, 2 * i) + tsp_mul(i) + getppid();
  sum += tsp_len(argv[0]);
  return sum == 42 ? 3 : 0;
}
`;

/** Builds the library and the PIE program that uses it in a temporary directory. */
async function build(): Promise<{ dir: string; exe: string; lib: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tsprobe-uprobe-" });
  await Deno.writeTextFile(`${dir}/lib.c`, LIBRARY);
  await Deno.writeTextFile(`${dir}/main.c`, PROGRAM);
  const gcc = async (...args: string[]) => {
    const out = await new Deno.Command("gcc", { args, cwd: dir, stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`gcc ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await gcc("-O2", "-shared", "-fPIC", "-o", "libtsp.so", "lib.c");
  await gcc("-O2", "-fPIE", "-pie", "-o", "prog", "main.c", "-L.", "-ltsp", "-Wl,-rpath,$ORIGIN");
  return { dir, exe: `${dir}/prog`, lib: `${dir}/libtsp.so` };
}

async function withProgram(fn: (p: { exe: string; lib: string }) => Promise<void>): Promise<void> {
  const p = await build();
  try {
    await fn(p);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
}

Deno.test("uprobe counts exactly the N calls of a PIE executable's function, with its arguments", async () => {
  await withProgram(async ({ exe }) => {
    const args: Array<[bigint, bigint]> = [];
    uprobe.on(`${exe}:tsp_add`, (e) => args.push([e.arg0, e.arg1]));
    const counted = uprobe.on(`${exe}:tsp_add`).count();
    const summary = await run({ command: [exe, String(N)], printAggregations: false });
    equal(summary.commandExitCode, 0);
    equal(args.length, N);
    equal(
      args.sort((a, b) => Number(a[0] - b[0])),
      Array.from({ length: N }, (_, i) => [BigInt(i), BigInt(2 * i)]),
    );
    equal(counted.read()?.rows.map((r) => r.value), [{ kind: "count", value: N }], "in the kernel");
  });
});

Deno.test("uprobe strings: the string an argument points to, read when the probe fires", async () => {
  await withProgram(async ({ exe }) => {
    const seen: Array<[string, bigint]> = [];
    uprobe.on(`${exe}:tsp_len`, (e) => seen.push([e.str0, e.arg0]), { strings: [0] });
    await run({ command: [exe, "1"] });
    equal(seen.length, 1);
    equal(seen[0][0], exe, "argv[0], as the program was started");
    ok(seen[0][1] > 0n, "arg0 is the pointer itself");
  });
});

Deno.test("uretprobe's retval is what the function returned, each of N times", async () => {
  await withProgram(async ({ exe }) => {
    const returned: bigint[] = [];
    uretprobe.on(`${exe}:tsp_add`, (e) => returned.push(e.retval));
    await run({ command: [exe, String(N)] });
    equal(
      returned.sort((a, b) => Number(a - b)),
      Array.from({ length: N }, (_, i) => BigInt(3 * i + 1)),
    );
  });
});

Deno.test("uprobe on shared libraries: by path, and libc's getppid by short name", async () => {
  await withProgram(async ({ exe, lib }) => {
    const muls: bigint[] = [];
    let getppids = 0;
    uprobe.on(`${lib}:tsp_mul`, (e) => muls.push(e.arg0));
    uprobe.on("libc:getppid", () => getppids++);
    const products: bigint[] = [];
    uretprobe.on(`${lib}:tsp_mul`, (e) => products.push(e.retval));
    await run({ command: [exe, String(N)] });
    equal(muls.sort((a, b) => Number(a - b)), Array.from({ length: N }, (_, i) => BigInt(i)));
    equal(
      products.sort((a, b) => Number(a - b)),
      Array.from({ length: N }, (_, i) => BigInt(7 * i)),
    );
    equal(getppids, N, "the command's getppid calls, and no other process's");
  });
});

Deno.test("uprobe specs: a malformed one, a missing function, a missing library: one line each", () => {
  throws(() => uprobe.on("libc"), /is not TARGET:SYMBOL/);
  throws(() => uprobe.on("libc:getppdi"), /Function 'getppdi' not found .*did you mean getppid/);
  throws(() => uprobe.on("libnosuchlib:f"), /Library 'libnosuchlib' not found/);
  throws(() => uprobe.on("libc:getppid+zz"), /is not TARGET:SYMBOL/);
});

Deno.test("probe -l lists a file's functions as uprobes and uretprobes", () => {
  const names = listProbes("uprobe:libc:getppi*").map((p) => p.name);
  equal(names, ["uprobe:libc:getppid"]);
  const [ret] = listProbes("uretprobe:libc:getppid");
  equal(ret.args, [{ name: "retval", type: "u64" }]);
  ok(listProbes("uprobe:*").length === 0, "no file named: nothing listed");
});
