/**
 * Without the privilege tracing needs, tools/run, tools/probe and tools/test say in one line
 * what is missing and what to do, and exit 1, before installing anything: run as an
 * unprivileged user (nobody) with a fresh HOME and no Deno on the PATH, and as root with its
 * capabilities dropped. Help needs no privilege.
 *
 * Needs root (to become the others) and setpriv (util-linux).
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * Runs tools/`tool` `args` as set up by `setpriv`, with HOME a fresh empty directory that
 * anyone may write, or only root when `writableHome` is false.
 */
async function asUser(setpriv: string[], tool: string, args: string[], writableHome = true) {
  const home = await Deno.makeTempDir({ prefix: "tsprobe-home-" });
  try {
    await Deno.chmod(home, writableHome ? 0o777 : 0o755);
    const r = await new Deno.Command("setpriv", {
      args: [...setpriv, "--", `${ROOT}tools/${tool}`, ...args],
      // No deno on the PATH: the bootstrap would install one, were it allowed to go on.
      env: { HOME: home, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const left = [...Deno.readDirSync(home)].map((e) => e.name);
    return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr), left };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];
/** Root without the capabilities that make it root. */
const NO_CAPS = ["--bounding-set=-sys_admin,-bpf,-perfmon"];

Deno.test("tools/run, tools/probe and tools/test as nobody: one line naming what is missing, exit 1, nothing installed", async () => {
  const cases: Array<[string, string[], RegExp]> = [
    [
      "run",
      ["scripts/syscount.ts"],
      /^tools\/run: not root, and without CAP_BPF and CAP_PERFMON: .*sudo/,
    ],
    ["probe", ["-e", "syscall.on('read:return').count()"], /^probe: not root, .*CAP_BPF.*sudo/],
    ["test", [], /^tools\/test: not root, and without CAP_SYS_ADMIN: .*sudo tools\/test/],
  ];
  for (const [tool, args, says] of cases) {
    const r = await asUser(NOBODY, tool, args);
    equal(r.code, 1, `${tool}: ${r.stderr}`);
    equal(r.stderr.trimEnd().split("\n").length, 1, `${tool}: ${r.stderr}`);
    ok(says.test(r.stderr), `${tool}: ${r.stderr}`);
    equal([r.stdout, r.left], ["", []], `${tool} went on`);
  }
});

Deno.test("tools/run and tools/probe as root without its capabilities: one line, exit 1", async () => {
  for (const tool of ["run", "probe"]) {
    const r = await asUser(NO_CAPS, tool, ["scripts/syscount.ts"]);
    equal(r.code, 1, `${tool}: ${r.stderr}`);
    equal(r.stderr.trimEnd().split("\n").length, 1, `${tool}: ${r.stderr}`);
    ok(/without CAP_BPF and CAP_PERFMON/.test(r.stderr), `${tool}: ${r.stderr}`);
  }
});

Deno.test("help needs no privilege", async () => {
  for (const tool of ["run", "test"]) {
    const r = await asUser(NOBODY, tool, ["--help"]);
    equal(r.code, 0, `${tool}: ${r.stderr}`);
    ok(r.stdout.includes(`tools/${tool}`), r.stdout);
    equal(r.left, []);
  }
});

/** nobody, with the capabilities tracing needs. */
const TRACER = [...NOBODY, "--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"];

Deno.test("a user who may trace but cannot write HOME: one line on where Deno cannot go", async () => {
  const r = await asUser(TRACER, "run", ["scripts/syscount.ts"], false);
  equal(r.code, 1, r.stderr);
  equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  ok(/^bootstrap: cannot install deno .* set TSPROBE_HOME/.test(r.stderr), r.stderr);
});

Deno.test("a user with CAP_BPF and CAP_PERFMON may trace, but not run the tests", async () => {
  const caps = TRACER;
  const check = (need: string) =>
    new Deno.Command("setpriv", {
      args: [...caps, "--", "bash", "-c", `. tools/bootstrap.sh; require_privilege x ${need}`],
      cwd: ROOT,
      stderr: "piped",
    }).output();
  equal((await check("tracing")).code, 0);
  const admin = await check("admin");
  equal(admin.code, 1);
  ok(new TextDecoder().decode(admin.stderr).includes("without CAP_SYS_ADMIN"));
});
