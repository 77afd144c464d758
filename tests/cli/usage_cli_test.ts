/**
 * The CLI's usage errors that depend on the machine: an output file that cannot be written, a
 * command that cannot start, and what a session says when what it traced is gone.
 *
 * Needs root, libbpf and perl.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, probe } from "../fixtures/subprocess.ts";
import { endOf } from "../fixtures/records.ts";
import { attachedPrograms } from "../../testing/attached.ts";

const COUNT = "syscall.on('getppid:entry').count()";

Deno.test("-o to a path that cannot be written: one line, exit 2, before tracing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const path of ["/proc/nope/x", dir, "/nonexistent-dir/out.json"]) {
      const r = await probe(["-e", COUNT, "-d", "10s", "-o", path]);
      equal(r.code, 2, `${path}: ${r.stderr}`);
      equal(lines(r.stderr).length, 1, r.stderr);
      ok(r.stderr.includes(`-o '${path}'`), r.stderr);
    }
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("-o checked for a usage error that follows leaves no file behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await probe(["-e", COUNT, "-d", "soon", "-o", `${dir}/out.txt`]);
    equal(r.code, 2, r.stderr);
    equal([...Deno.readDirSync(dir)], [], "no output file was created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-c with a command that cannot start: one line, exit 2", async () => {
  const cases: Array<[string, string]> = [
    ["no-such-command-xyz --flag", "no such program 'no-such-command-xyz' (in PATH)"],
    ["./no-such-file", "no such program './no-such-file'"],
    ["/etc/passwd x", "'/etc/passwd' is not an executable file"],
    ["/tmp", "'/tmp' is not an executable file"],
  ];
  for (const [command, says] of cases) {
    const r = await probe(["-e", COUNT, "-c", command]);
    equal(r.code, 2, r.stderr);
    equal(lines(r.stderr).length, 1, r.stderr);
    ok(r.stderr.includes(says), r.stderr);
  }
});

Deno.test("a traced command's nonzero exit status is said, and is in JSON and NDJSON", async () => {
  const text = await probe(["-e", COUNT, "-c", "exit 3"]);
  equal(text.code, 0, text.stderr);
  ok(text.stderr.includes("exited with status 3"), text.stderr);
  const json = await probe(["-e", COUNT, "-c", "exit 3", "--format", "json"]);
  equal(endOf(json.stdout, "json").command_exit_code, 3, json.stdout);
  const nd = await probe(["-e", COUNT, "-c", "exit 3", "--format", "ndjson"]);
  equal(endOf(nd.stdout, "ndjson").command_exit_code, 3, nd.stdout);
  const ok0 = await probe(["-e", COUNT, "-c", "true", "--format", "json"]);
  equal(endOf(ok0.stdout, "json").command_exit_code, 0, ok0.stdout);
  ok(!ok0.stderr.includes("exited with status"), ok0.stderr);
});

Deno.test("when every -p process has exited, the session ends and says so", async () => {
  // The traced process exits once probe has attached, however long probe takes to start.
  const child = new Deno.Command("perl", { args: ["-e", "my $line = <STDIN>"], stdin: "piped" })
    .spawn();
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const args = ["run", "-A", cli, "-e", COUNT, "-p", String(child.pid), "-d", "60s"];
  const proc = new Deno.Command(Deno.execPath(), {
    args: [...args, "--format", "json"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 600 && attachedPrograms(proc.pid) === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await child.stdin.close();
  await child.status;
  const out = await proc.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const r = { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  equal(r.code, 0, r.stderr);
  ok(r.stderr.includes("all traced processes exited"), r.stderr);
  equal(endOf(r.stdout, "json").reason, "exited");
});
