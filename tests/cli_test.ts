import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { integrityOf } from "../cli/remote.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function probe(args: string[], wrap: string[] = []) {
  const cmd = [...wrap, Deno.execPath(), "run", "-A", `${ROOT}cli.ts`, ...args];
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

Deno.test("probe --help lists the commands and options", async () => {
  const r = await probe(["--help"]);
  equal(r.code, 0);
  for (const o of ["-e CODE", "-l [PATTERN]", "run FILE|URL", "--format", "--explain", "-o"]) {
    ok(r.stdout.includes(o), o);
  }
});

Deno.test("usage errors exit 2 with one line", async () => {
  const cases: Array<[string[], string]> = [
    [["--bogus"], "bogus"],
    [["-e", "syscall.on('read:return').count()", "--format", "xml"], "--format 'xml'"],
    [["-e", "syscall.on('reed:return').count()", "-d", "1s"], "Unknown syscall 'reed'"],
    [["-e", "syscall.on('read:return').where((e) => e.ret > limit).count()"], "limit"],
    [["-e", "syscall.on('read:return', ("], "does not run"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["run", "/nonexistent/recipe.ts"], "no recipe file"],
  ];
  for (const [args, says] of cases) {
    const r = await probe(args);
    equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(r.stderr.includes(says), `${args.join(" ")}: ${r.stderr}`);
  }
});

Deno.test("a missing precondition is said with its remedy, exit 1", async () => {
  const r = await probe(["-e", "syscall.on('read:return').count()", "-d", "1s"], [
    "setpriv",
    "--bounding-set=-sys_admin,-bpf,-perfmon",
  ]);
  equal(r.code, 1);
  ok(r.stderr.includes("not root, and without CAP_BPF and CAP_PERFMON: run as root"), r.stderr);
});

Deno.test("probe -l lists probes with their arguments", async () => {
  const r = await probe(["-l", "io:*", "-v"]);
  equal(r.code, 0);
  ok(r.stdout.includes("io:start  (NFS:") && r.stdout.includes("string file.fi_pathname"));
});

Deno.test("probe -e with --format json -o FILE writes the aggregations as JSON", async () => {
  const out = await Deno.makeTempFile();
  try {
    const r = await probe([
      "-e",
      "syscall.on('getppid:entry').where((e) => e.comm === 'perl').count((e) => e.comm)",
      "-c",
      "perl -e 'getppid() for 1..7'",
      "--format",
      "json",
      "-o",
      out,
    ]);
    equal(r.code, 0, r.stderr);
    const json = JSON.parse(await Deno.readTextFile(out));
    equal(json.aggregations[0].rows, [{ key: ["perl"], value: 7 }]);
    equal(json.reason, "command");
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("probe --explain shows the kernel program and loads nothing", async () => {
  const r = await probe([
    "-e",
    "syscall.on('read:return').where((e) => e.ret > 0).count()",
    "--explain",
  ]);
  equal(r.code, 0, r.stderr);
  ok(r.stdout.includes("probe syscall:read:return") && r.stdout.includes("call map_lookup_elem"));
});

Deno.test("probe run FILE runs a recipe with its own options", async () => {
  const r = await probe(["run", `${ROOT}scripts/aio_latency.ts`, "--", "--by", "opcode", "--json"]);
  equal(r.code, 0, r.stderr);
  const total = JSON.parse(r.stdout).groups.reduce(
    (n: number, g: { count: number }) => n + g.count,
    0,
  );
  equal(total, 4096);
});

Deno.test("probe run URL runs only a pinned or trusted recipe; unpinned, it shows what it would load", async () => {
  // The repository served over HTTP, as a recipe host would.
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    try {
      return new Response(await Deno.readFile(ROOT + new URL(req.url).pathname.slice(1)), {
        headers: { "content-type": "application/typescript" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/scripts/aio_latency.ts`;
    const hash = await integrityOf(await Deno.readTextFile(`${ROOT}scripts/aio_latency.ts`));
    const unpinned = await probe(["run", url]);
    equal(unpinned.code, 2, unpinned.stderr);
    ok(unpinned.stdout.includes("probe aio:reap") && unpinned.stdout.includes("program "));
    ok(unpinned.stderr.includes(`--integrity ${hash}`), unpinned.stderr);
    const wrong = await probe(["run", url, "--integrity", "sha256-00"]);
    equal(wrong.code, 2);
    ok(wrong.stderr.includes("does not match"), wrong.stderr);
    const pinned = await probe(["run", url, "--integrity", hash, "--", "--json"]);
    equal(pinned.code, 0, pinned.stderr);
    ok(JSON.parse(pinned.stdout).groups.length > 0);
  } finally {
    await server.shutdown();
  }
});
