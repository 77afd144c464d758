import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { recipe } from "./fixtures/subprocess.ts";

Deno.test("opensnoop --help, and a usage error in one line with exit 2", async () => {
  const help = await recipe("opensnoop", "--help");
  equal(help.code, 0);
  ok(help.stdout.includes("--failed") && help.stdout.includes("--command"));
  const bad = await recipe("opensnoop", "--pid", "x");
  equal(bad.code, 2);
  equal(bad.stderr.trim().split("\n").length, 1);
});

Deno.test("opensnoop shows a command's opens, with results; -x only the failed ones", async () => {
  const all = await recipe(
    "opensnoop",
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
  const failed = await recipe(
    "opensnoop",
    "-c",
    "cat /etc/hostname /nonexistent-opensnoop > /dev/null 2>&1",
    "-x",
    "--json",
  );
  const paths = failed.stdout.trim().split("\n").map((l) => JSON.parse(l));
  ok(paths.every((l) => l.ret < 0));
  ok(paths.some((l) => l.path === "/nonexistent-opensnoop"));
});
