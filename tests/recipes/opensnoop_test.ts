import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { eventsOf } from "../fixtures/records.ts";
import { recipe } from "../fixtures/subprocess.ts";

interface Open {
  pid: number;
  comm: string;
  ret: number;
  us?: number;
  path: string;
}

Deno.test("opensnoop --help, and a usage error in one line with exit 2", async () => {
  const help = await recipe("opensnoop", "--help");
  equal(help.code, 0);
  ok(help.stdout.includes("--failed") && help.stdout.includes("--command"));
  const bad = await recipe("opensnoop", "--pid", "x");
  equal(bad.code, 2);
  equal(bad.stderr.trim().split("\n").length, 1);
});

Deno.test("opensnoop -n: a command name is 1 to 15 bytes, '' or a longer one is a usage error", async () => {
  // "é" is 2 bytes: 8 of them are 16 bytes in 8 characters.
  for (const [name, bytes] of [["", 0], ["abcdefghijklmnop", 16], ["é".repeat(8), 16]] as const) {
    const r = await recipe("opensnoop", "-n", name);
    equal(r.code, 2, r.stderr);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(r.stderr.includes(`--name '${name}' is ${bytes} bytes`), r.stderr);
    equal(r.stdout, "");
  }
  const cat = await recipe(
    "opensnoop",
    "-n",
    "cat",
    "-c",
    "cat /etc/hostname >/dev/null",
    "--format",
    "ndjson",
  );
  equal(cat.code, 0, cat.stderr);
  const opens = eventsOf<Open>(cat.stdout, "ndjson", "open");
  ok(opens.some((l) => l.path === "/etc/hostname"), cat.stdout);
  ok(opens.every((l) => l.comm === "cat"), cat.stdout);
});

Deno.test("opensnoop shows a command's opens, with results; -x only the failed ones", async () => {
  const all = await recipe(
    "opensnoop",
    "-c",
    "cat /etc/hostname /nonexistent-opensnoop > /dev/null 2>&1",
    "--json",
  );
  equal(all.code, 0, all.stderr);
  const cat = eventsOf<Open>(all.stdout, "json", "open").filter((l) => l.comm === "cat");
  const hostname = cat.find((l) => l.path === "/etc/hostname");
  ok(hostname && hostname.ret >= 0 && hostname.us! > 0, JSON.stringify(cat));
  equal(cat.find((l) => l.path === "/nonexistent-opensnoop")?.ret, -2); // ENOENT
  const failed = await recipe(
    "opensnoop",
    "-c",
    "cat /etc/hostname /nonexistent-opensnoop > /dev/null 2>&1",
    "-x",
    "--json",
  );
  equal(failed.code, 0, failed.stderr);
  const paths = eventsOf<Open>(failed.stdout, "json", "open");
  ok(paths.every((l) => l.ret < 0));
  ok(paths.some((l) => l.path === "/nonexistent-opensnoop"));
});
