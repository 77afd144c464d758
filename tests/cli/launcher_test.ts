/**
 * The `probe` command that tools/bootstrap.sh installs (a launcher naming the checkout): it runs
 * this checkout's tools/probe however bootstrap.sh was sourced (tools/test sources it by a
 * relative path, tools/probe and tools/run by an absolute one), and replacing an old symlink
 * never writes through it. Installed into a directory of the test's own (TSPROBE_BIN).
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Sources bootstrap.sh as `source` from `cwd` and installs the launcher into `bin`. */
async function install(bin: string, cwd: string, source: string): Promise<void> {
  const r = await new Deno.Command("bash", {
    args: ["-c", `. ${source} && install_probe`],
    cwd,
    env: { TSPROBE_BIN: bin },
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

/** What `bin`/probe --version prints, and its exit code. */
async function version(bin: string): Promise<{ code: number; stdout: string }> {
  const r = await new Deno.Command(`${bin}/probe`, {
    args: ["--version"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout) };
}

for (
  const [how, cwd, source] of [
    ["a relative path, from the checkout (as tools/test)", ROOT, "tools/bootstrap.sh"],
    ["./ and a relative path", ROOT, "./tools/bootstrap.sh"],
    ["a path from elsewhere", `${ROOT}/tools`, "../tools/bootstrap.sh"],
    ["an absolute path (as tools/probe and tools/run)", "/", `${ROOT}/tools/bootstrap.sh`],
  ]
) {
  Deno.test(`bootstrap.sh sourced by ${how} installs a probe that runs this checkout`, async () => {
    const bin = await Deno.makeTempDir({ prefix: "tsprobe-bin-" });
    try {
      await install(bin, cwd, source);
      const lines = (await Deno.readTextFile(`${bin}/probe`)).split("\n");
      equal(lines[2], `probe_root=${ROOT}`);
      const v = await version(bin);
      equal(v.code, 0);
      ok(v.stdout.startsWith("probe (tsprobe) "), v.stdout);
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  });
}

Deno.test("installing over a symlink replaces the link, not the file it points to", async () => {
  const bin = await Deno.makeTempDir({ prefix: "tsprobe-bin-" });
  try {
    const victim = `${bin}/victim`;
    await Deno.writeTextFile(victim, "keep me\n");
    await Deno.symlink(victim, `${bin}/probe`);
    await install(bin, ROOT, "tools/bootstrap.sh");
    equal(await Deno.readTextFile(victim), "keep me\n");
    ok(!(await Deno.lstat(`${bin}/probe`)).isSymlink);
    equal((await version(bin)).code, 0);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});
