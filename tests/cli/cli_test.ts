import { haveNfsTracepoints } from "../../runtime/providers/io/nfs.ts";
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { exists } from "../fixtures/bpf.ts";
import { probe } from "../fixtures/subprocess.ts";
import { aggregationsOf, endOf, tableOf } from "../fixtures/records.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

Deno.test("probe --help lists the commands and options", async () => {
  const r = await probe(["--help"]);
  equal(r.code, 0);
  for (
    const o of [
      "-e CODE",
      "-l [PATTERN]",
      "FILE|URL [RECIPE ARGS...]",
      "--format",
      "--explain",
      "-o",
    ]
  ) {
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
    // The prefix and suffix every recipe's usage errors have too.
    ok(/^probe: .* \(see --help\)\n$/.test(r.stderr), r.stderr);
  }
});

Deno.test("a missing precondition is said with its remedy, exit 1", async () => {
  const r = await probe(["-e", "syscall.on('read:return').count()", "-d", "1s"], {
    wrap: ["setpriv", "--bounding-set=-sys_admin,-bpf,-perfmon"],
  });
  equal(r.code, 1);
  ok(r.stderr.includes("not root, and without CAP_BPF and CAP_PERFMON: run as root"), r.stderr);
});

Deno.test("probe -l lists probes with their arguments", async () => {
  const r = await probe(["-l", "io:*", "-v"]);
  equal(r.code, 0);
  ok(r.stdout.includes("string file.fi_pathname"), r.stdout);
  // The NFS part is said to be missing where the nfs client module is not loaded.
  equal(/io:start {2}\[1\]/.test(r.stdout), !haveNfsTracepoints(), r.stdout);
  ok(r.stdout.startsWith("(every event also has: u32 pid,"), r.stdout);
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
    const text = await Deno.readTextFile(out);
    equal(aggregationsOf(text, "json").map((a) => a.rows), [[{ key: { comm: "perl" }, value: 7 }]]);
    equal(endOf(text, "json").reason, "command");
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("what a run lost is said on stderr and in JSON: AIO requests reaped in user space and resubmitted", async () => {
  const file = await Deno.makeTempFile({ dir: "/var/tmp" });
  try {
    // fio reaps from the mapped ring (no io_getevents) and submits its 8 iocbs again and again.
    const fio = `fio --name=t --filename=${file} --size=16m --rw=randread --bs=4k --iodepth=8 ` +
      `--ioengine=libaio --direct=1 --number_ios=2048 --userspace_reap=1 ` +
      `--iodepth_batch_complete_min=0 --output=/dev/null`;
    const r = await probe(["-e", "aio.on('reap').count()", "-c", fio, "--format", "json"]);
    equal(r.code, 0, r.stderr);
    const json = endOf(r.stdout, "json");
    const c = json.counters;
    const replaced = c["aio.replaced"];
    ok(replaced > 0, r.stdout);
    equal(c["aio.submitted"], 2048);
    equal(replaced + c["aio.swept"] + c["aio.inflight"], 2048, "every request accounted for");
    const line = `${replaced} AIO requests never timed: their iocb was submitted again before ` +
      `their reap was seen (aio.replaced)`;
    equal(json.losses, [line]);
    ok(r.stderr.includes(`tsprobe: ${line}`), r.stderr);
  } finally {
    await Deno.remove(file);
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
  const r = await probe([
    "run",
    `${ROOT}scripts/aio_latency.ts`,
    "--",
    "--demo",
    "--by",
    "opcode",
    "--json",
  ]);
  equal(r.code, 0, r.stderr);
  const { rows } = tableOf<{ count: number }>(r.stdout, "json", "groups");
  equal(rows.reduce((n, g) => n + g.count, 0), 4096);
});

/**
 * A recipe host on 127.0.0.1: `files` by path, each a text or a function of how many times the
 * path was asked for (1 first), with the count of requests per path; every file is sent with
 * `contentType` (none when null).
 */
function recipeHost(
  files: Record<string, string | ((n: number) => string)>,
  contentType: string | null = "application/typescript",
) {
  const requests: Record<string, number> = {};
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const n = requests[path] = (requests[path] ?? 0) + 1;
    const file = files[path];
    const body = typeof file === "function"
      ? file(n)
      : file ?? await Deno.readFile(ROOT + path.slice(1)).catch(() => undefined);
    if (body === undefined) return new Response("not found", { status: 404 });
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    return new Response(bytes, { headers: contentType ? { "content-type": contentType } : {} });
  });
  return { url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`, requests, server };
}

Deno.test("probe run URL: unpinned, nothing of the recipe runs; it lists its modules and the pin", async () => {
  const marker = await Deno.makeTempFile({ prefix: "tsprobe-cli-" });
  await Deno.remove(marker);
  const host = recipeHost({
    "/evil.ts": `import { v } from "./dep.ts"; Deno.writeTextFileSync("${marker}", String(v));`,
    "/dep.ts": "export const v = 1;",
  });
  try {
    const r = await probe(["run", host.url("/evil.ts")]);
    equal(r.code, 2, r.stderr);
    ok(!exists(marker), "the recipe's top-level code ran");
    ok(r.stdout.includes(host.url("/evil.ts")) && r.stdout.includes(host.url("/dep.ts")), r.stdout);
    const pin = /--integrity (sha256-[A-Za-z0-9+/]+=*)/.exec(r.stderr)?.[1];
    ok(pin, r.stderr);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    const pinned = await probe(["pin", host.url("/evil.ts")]);
    equal([pinned.code, pinned.stdout.trim()], [0, pin]);
  } finally {
    await host.server.shutdown();
    await Deno.remove(marker).catch(() => {});
  }
});

Deno.test("probe run URL: --trust and --integrity after the URL are the recipe's and pin nothing", async () => {
  const marker = await Deno.makeTempFile({ prefix: "tsprobe-cli-" });
  await Deno.remove(marker);
  const host = recipeHost({
    "/args.ts": `Deno.writeTextFileSync("${marker}", JSON.stringify(Deno.args));`,
  });
  try {
    const url = host.url("/args.ts");
    const pin = (await probe(["pin", url])).stdout.trim();
    for (const after of [["--trust"], ["--integrity", pin], ["--", "--trust"]]) {
      const r = await probe(["run", url, ...after]);
      equal(r.code, 2, r.stderr);
      ok(r.stderr.includes(`to run it: probe run --integrity ${pin} ${url}`), r.stderr);
      ok(!exists(marker), `${after.join(" ")}: the recipe ran`);
    }
    // Before the URL they are probe's; after it, still the recipe's.
    for (const before of [["--trust"], ["--integrity", pin]]) {
      const r = await probe(["run", ...before, url, "--integrity", pin, "--trust", "-a"]);
      equal(r.code, 0, r.stderr);
      equal(JSON.parse(await Deno.readTextFile(marker)), ["--integrity", pin, "--trust", "-a"]);
      await Deno.remove(marker);
    }
  } finally {
    await host.server.shutdown();
    await Deno.remove(marker).catch(() => {});
  }
});

Deno.test("probe run URL: the pin covers every module, and what runs is what was checked", async () => {
  const marker = await Deno.makeTempFile({ prefix: "tsprobe-cli-" });
  let dep = "export const v = 1;";
  const host = recipeHost({
    // A server that answers differently every other time.
    "/flip.ts": (n) => `Deno.writeTextFileSync("${marker}", "${n % 2 ? "A" : "B"}");`,
    "/main.ts": `import { v } from "./dep.ts"; Deno.writeTextFileSync("${marker}", "v" + v);`,
    "/dep.ts": () => dep,
  });
  const run = (path: string, pin: string) => probe(["run", "--integrity", pin, host.url(path)]);
  try {
    const pinA = (await probe(["pin", host.url("/flip.ts")])).stdout.trim(); // request 1: A
    const changed = await run("/flip.ts", pinA); // request 2: B
    equal(changed.code, 2, changed.stderr);
    ok(changed.stderr.includes("does not match"), changed.stderr);
    equal(changed.stderr.trim().split("\n").length, 1, changed.stderr);
    equal(await Deno.readTextFile(marker), "", "B did not run");
    const same = await run("/flip.ts", pinA); // request 3: A again
    equal(same.code, 0, same.stderr);
    equal(await Deno.readTextFile(marker), "A");
    equal(host.requests["/flip.ts"], 3, "one download per run, none while running");

    const pin = (await probe(["pin", host.url("/main.ts")])).stdout.trim();
    await Deno.writeTextFile(marker, "");
    dep = "export const v = 2;"; // an imported module changes
    const refused = await run("/main.ts", pin);
    equal(refused.code, 2, refused.stderr);
    ok(refused.stderr.includes("does not match"), refused.stderr);
    equal(await Deno.readTextFile(marker), "", "nothing ran");
    const bad = await run("/main.ts", "sha256-00");
    equal(bad.code, 2, bad.stderr);
    ok(bad.stderr.includes("is not sha256-"), bad.stderr);
  } finally {
    await host.server.shutdown();
    await Deno.remove(marker).catch(() => {});
  }
});

Deno.test("probe run URL runs a real recipe served over HTTP when pinned", async () => {
  // The repository served over HTTP, as a recipe host would.
  const host = recipeHost({});
  try {
    const url = host.url("/scripts/aio_latency.ts");
    const pin = (await probe(["pin", url])).stdout.trim();
    ok(/^sha256-[A-Za-z0-9+/]{43}=$/.test(pin), pin);
    const pinned = await probe(["run", "--integrity", pin, url, "--demo", "--json"]);
    equal(pinned.code, 0, pinned.stderr);
    ok(tableOf(pinned.stdout, "json", "groups").rows.length > 0);
  } finally {
    await host.server.shutdown();
  }
});

Deno.test("probe run FILE|URL --explain: the recipe's run() shows what would load and loads nothing", async () => {
  const dir = await Deno.makeTempDir();
  const marker = `${dir}/ran-on`;
  const recipe = (mod: string) =>
    `import { run, syscall } from "${mod}";\n` +
    `syscall.on("getppid:entry").count();\n` +
    `await run({ duration: "100ms" });\n` +
    `Deno.writeTextFileSync("${marker}", "");\n`;
  const host = recipeHost({ "/explained.ts": recipe("./mod.ts") });
  try {
    await Deno.writeTextFile(`${dir}/local.ts`, recipe(`${ROOT}mod.ts`));
    // The served recipe loads the library from the server: its own copy, which the host
    // module still reaches.
    const url = host.url("/explained.ts");
    const pin = (await probe(["pin", url])).stdout.trim();
    for (const target of [[`${dir}/local.ts`], ["--integrity", pin, url]]) {
      const r = await probe(["run", "--explain", ...target]);
      equal(r.code, 0, r.stderr);
      ok(r.stdout.includes("probe syscall:getppid:entry"), r.stdout);
      ok(!exists(marker), `${target.at(-1)}: the recipe went on after run()`);
    }
  } finally {
    await host.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe pin and run URL: a recipe sent as text/plain, octet-stream or untyped runs; as text/html, one line", async () => {
  const marker = await Deno.makeTempFile({ prefix: "tsprobe-cli-" });
  const files = {
    "/typed.ts": `import { v } from "./dep.ts"; const n: number = v; ` +
      `Deno.writeTextFileSync("${marker}", String(n));`,
    // TypeScript that does not parse as JavaScript, as text/html makes Deno read it.
    "/cast.ts":
      `import { v } from "./dep.ts"; Deno.writeTextFileSync("${marker}", String(v as 7));`,
    "/dep.ts": "export const v: number = 7;",
  };
  try {
    for (const type of ["text/plain", "application/octet-stream", null, "text/html"]) {
      const host = recipeHost(files, type);
      try {
        for (const path of ["/typed.ts", "/cast.ts"]) {
          await Deno.writeTextFile(marker, "");
          const url = host.url(path);
          const pin = await probe(["pin", url]);
          // Without a pin (text/html has none), one of 32 zero bytes: the check comes first.
          const integrity = pin.stdout.trim() || `sha256-${btoa("\0".repeat(32))}`;
          const run = await probe(["run", "--integrity", integrity, url]);
          if (type !== "text/html") {
            equal([pin.code, run.code], [0, 0], `${type} ${path}: ${pin.stderr}${run.stderr}`);
            equal(await Deno.readTextFile(marker), "7", `${type} ${path}: did not run`);
            continue;
          }
          for (const r of [pin, run]) {
            equal(r.code, 1, r.stderr);
            equal(r.stderr.trim().split("\n").length, 1, r.stderr);
            ok(/text\/html.*application\/typescript/.test(r.stderr), `${path}: ${r.stderr}`);
          }
          equal(await Deno.readTextFile(marker), "", `${path}: nothing of it ran`);
        }
      } finally {
        await host.server.shutdown();
      }
    }
  } finally {
    await Deno.remove(marker);
  }
});

Deno.test("probe --format folded prints stack-keyed counts one line each, for flame graph tools", async () => {
  const r = await probe([
    "-e",
    "tracepoint('sched:sched_process_fork').where((e) => e.comm === 'perl').count((e) => [e.comm, e.kstack])",
    "-c",
    "perl -e 'for (1..4) { fork() || exit 0; wait }'",
    "--format",
    "folded",
  ]);
  equal(r.code, 0, r.stderr);
  const folded = r.stdout.split("\n").filter((l) => l);
  ok(folded.length >= 1, r.stdout);
  for (const l of folded) ok(/^perl;entry_SYSCALL_64[^ ]*(;[^; ]+)+ \d+$/.test(l), l);
  equal(folded.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0), 4);
});

Deno.test("probe --version names the release; bpftrace syntax in -e is pointed to the TypeScript form", async () => {
  const v = await probe(["--version"]);
  equal(v.code, 0);
  ok(/^probe \(tsprobe\) \d+\.\d+\.\d+, Deno \d+/.test(v.stdout), v.stdout);
  const bt = await probe(["-e", "tracepoint:syscalls:sys_enter_read { @[comm] = count(); }"]);
  equal(bt.code, 2);
  equal(bt.stderr.trim().split("\n").length, 1, bt.stderr);
  ok(bt.stderr.includes("-e takes TypeScript, not bpftrace's language"), bt.stderr);
});

Deno.test("probe -e honours an aggregation's top: only the N largest keys print", async () => {
  const r = await probe([
    "-e",
    "syscall.on('getppid:entry').where((e) => e.comm === 'perl').count((e) => e.tid, { top: 1 })",
    "-c",
    "perl -e 'getppid() for 1..5; fork() || do { getppid() for 1..9; exit 0 }; wait'",
  ]);
  equal(r.code, 0, r.stderr);
  const rows = r.stdout.split("\n").filter((l) => l.startsWith("@count["));
  equal(rows.length, 1, r.stdout);
  ok(rows[0].endsWith(" 9"), r.stdout);
});

Deno.test("the banner comes once on stderr when all is attached: what starts after it is fully counted", async () => {
  const n = 300;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}cli.ts`,
      "-e",
      "syscall.on('getppid:entry').where((e) => e.comm === 'tsp_banner').count()",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes("\n")) {
    const { value, done } = await stderr.read();
    if (done) break;
    err += value;
  }
  ok(
    /^probe: tracing every process at 1 probe \(syscall:getppid:entry\), until Ctrl-C\n$/.test(err),
    err,
  );
  // Started only now: every call must be counted.
  const perl = await new Deno.Command("perl", {
    args: ["-e", `$0 = "tsp_banner"; getppid() for 1..${n}`],
  }).output();
  ok(perl.success);
  child.kill("SIGINT");
  const [status, out] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
  ]);
  for (;;) {
    const { value, done } = await stderr.read();
    if (done) break;
    err += value;
  }
  equal(status.code, 0, err);
  equal(out.trim(), `@count: ${n}`);
  equal(err.match(/tracing/g)?.length, 1, "the banner once");
});

Deno.test("probe run: a plain script's uncaught usage error is one line and exit 2", async () => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      `import { io, run } from ${JSON.stringify(`${ROOT}mod.ts`)};\n` +
        "io.on('start').where((e) => (e.buf.b_flags & B.B_WRITE) !== 0).count();\n" +
        "await run({ duration: '1s' });\n",
    );
    const r = await probe(["run", file]);
    equal(r.code, 2, r.stderr);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(r.stderr.startsWith("probe: Cannot compile for the kernel: `B` is not a field"), r.stderr);
  } finally {
    await Deno.remove(file);
  }
});
