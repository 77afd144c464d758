import { deepStrictEqual as equal, ok } from "node:assert/strict";

const SCRIPT = new URL("../scripts/opensnoop.ts", import.meta.url).pathname;

async function opensnoop(...args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

Deno.test("opensnoop --help, and a usage error in one line with exit 2", async () => {
  const help = await opensnoop("--help");
  equal(help.code, 0);
  ok(help.stdout.includes("--failed") && help.stdout.includes("--command"));
  const bad = await opensnoop("--pid", "x");
  equal(bad.code, 2);
  equal(bad.stderr.trim().split("\n").length, 1);
});

Deno.test("opensnoop shows a command's opens, with results; -x only the failed ones", async () => {
  const all = await opensnoop(
    "-c",
    "cat /etc/hostname /nonexistent-opensnoop > /dev/null 2>&1",
    "--json",
  );
  equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const cat = lines.filter((l) => l.comm === "cat");
  const hostname = cat.find((l) => l.path === "/etc/hostname");
  ok(hostname && hostname.ret >= 0 && hostname.us > 0, JSON.stringify(cat));
  equal(cat.find((l) => l.path === "/nonexistent-opensnoop")?.ret, -2); // ENOENT
  const failed = await opensnoop(
    "-c",
    "cat /etc/hostname /nonexistent-opensnoop > /dev/null 2>&1",
    "-x",
    "--json",
  );
  const paths = failed.stdout.trim().split("\n").map((l) => JSON.parse(l));
  ok(paths.every((l) => l.ret < 0));
  ok(paths.some((l) => l.path === "/nonexistent-opensnoop"));
});
