/**
 * Recipes as Prometheus agents, scraped by a real Prometheus (Debian's package): counts equal
 * what a traced child did, histograms equal /proc/diskstats and agree with the text output,
 * hostile label values pass Prometheus's own parser, and SIGTERM during scrapes leaves nothing
 * in the kernel.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { Prometheus } from "../fixtures/prometheus.ts";
import { freePort } from "../../testing/free_port.ts";
import { kernelIds, leftBehind } from "../fixtures/left_behind.ts";
import { lines } from "../fixtures/subprocess.ts";
import { diskstats, withLoopDevice } from "../../testing/loop_device.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A recipe or probe serving metrics, until {@link stop}. */
class Agent {
  readonly address = `127.0.0.1:${freePort()}`;
  readonly url = `http://${this.address}/metrics`;
  readonly process: Deno.ChildProcess;

  /** Starts `deno run -A FILE ARGS... --metrics ADDRESS` and waits until it serves. */
  private constructor(file: string, args: string[]) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}${file}`, ...args, "--metrics", this.address],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  static async start(file: string, ...args: string[]): Promise<Agent> {
    const agent = new Agent(file, args);
    for (let i = 0; i < 600; i++) {
      try {
        const r = await fetch(agent.url);
        await r.body?.cancel();
        if (r.ok) return agent;
      } catch { /* not attached yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    const out = await agent.stop();
    throw new Error(`the agent did not serve metrics: ${out.stderr}`);
  }

  /** The exposition now. */
  async scrape(): Promise<string> {
    return await (await fetch(this.url)).text();
  }

  /** SIGTERM; its exit code and output. */
  async stop(): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      this.process.kill("SIGTERM");
    } catch { /* already exited */ }
    const out = await this.process.output();
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  }
}

/** Runs `cmd` through sh; its pid once it exited (successfully). */
async function workload(cmd: string): Promise<number> {
  const child = new Deno.Command("sh", { args: ["-c", cmd] }).spawn();
  const status = await child.status;
  ok(status.success, `${cmd}: exit ${status.code}`);
  return child.pid;
}

Deno.test("syscount --metrics: Prometheus's counter of a child's getppid calls is exactly what it made", async () => {
  const agent = await Agent.start("scripts/syscount.ts", "--per-process", "-q");
  try {
    await using prometheus = await Prometheus.start(agent.address);
    const calls = 1234;
    // `exec` makes sh's pid perl's (sh calls getppid once itself, before).
    const pid = await workload(`exec perl -e 'getppid() for 1..${calls}'`);
    const query = `tsprobe_syscalls_total{pid="${pid}",comm="perl",syscall="getppid"}`;
    const series = await prometheus.until(query, (s) => s[0]?.value === calls);
    equal(series.map((s) => s.value), [calls]);
    equal(await prometheus.targetHealth(), ["up"]);
  } finally {
    const out = await agent.stop();
    equal(out.code, 0, out.stderr);
  }
});

Deno.test("hostile label values (quote, backslash, newline in a comm) pass promtool and reach Prometheus intact", async () => {
  const agent = await Agent.start(
    "cli.ts",
    "-e",
    'syscall.on("getppid:entry").count((e) => ({ comm: e.comm }), { title: "getppid" })',
    "-q",
  );
  try {
    await using prometheus = await Prometheus.start(agent.address);
    const comm = 'q"b\\s\nl';
    await workload(
      `exec perl -e 'open my $f, ">", "/proc/self/comm" or die; print $f "q\\"b\\\\s\\nl"; ` +
        `close $f; getppid() for 1..77'`,
    );
    const exposition = await agent.scrape();
    ok(exposition.includes('tsprobe_getppid_total{comm="q\\"b\\\\s\\nl"} 77'), exposition);
    const check = await new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = check.stdin.getWriter();
    await writer.write(new TextEncoder().encode(exposition));
    await writer.close();
    const verdict = await check.output();
    equal(verdict.code, 0, text(verdict.stdout) + text(verdict.stderr));
    const series = await prometheus.until(
      "tsprobe_getppid_total",
      (s) => s.some((x) => x.metric.comm === comm && x.value === 77),
    );
    ok(series.some((x) => x.metric.comm === comm && x.value === 77), JSON.stringify(series));
  } finally {
    await agent.stop();
  }
});

Deno.test("SIGTERM while scrapes are under way: the agent ends cleanly and leaves no BPF object", async () => {
  const before = kernelIds();
  const agent = await Agent.start(
    "cli.ts",
    "-e",
    'syscall.on("read:return").hist((e) => e.latencyNs! / 1000, { by: (e) => ({ comm: e.comm, tid: e.tid }) })',
    "-q",
  );
  let scrapes = 0;
  let stopping = false;
  // Four clients scraping back to back, until the agent is gone.
  const clients = Array.from({ length: 4 }, async () => {
    while (!stopping) {
      try {
        const body = await agent.scrape();
        if (body.includes("tsprobe_events_dropped_total")) scrapes++;
      } catch {
        return; // refused or cut: the agent is going
      }
    }
  });
  while (scrapes < 20) await new Promise((r) => setTimeout(r, 10));
  const out = await agent.stop();
  stopping = true;
  await Promise.all(clients);
  equal(out.code, 0, out.stderr);
  ok(!/error|panic|uncaught/i.test(out.stderr), out.stderr);
  equal(await leftBehind(before), [], "BPF objects left in the kernel");
  ok(lines(out.stdout).length > 0, "the histograms are printed at the end");
});

Deno.test("a full map shows in tsprobe_aggregation_updates_lost_total and once in the log", async () => {
  const agent = await Agent.start(
    "cli.ts",
    "-e",
    'syscall.on("getppid:entry").count((e) => ({ pid: e.pid }), { title: "by pid", size: 16 })',
    "-q",
  );
  try {
    // 40 processes: more keys than the map holds.
    await workload(`for i in $(seq 40); do perl -e 'getppid()'; done`);
    const exposition = await agent.scrape();
    const value = (name: string) =>
      Number(new RegExp(`^${name}\\{aggregation="by pid"\\} (\\d+)$`, "m").exec(exposition)?.[1]);
    equal(value("tsprobe_aggregation_keys"), 16, exposition);
    equal(value("tsprobe_aggregation_capacity"), 16, exposition);
    ok(value("tsprobe_aggregation_updates_lost_total") >= 24, exposition);
    await agent.scrape();
  } finally {
    const out = await agent.stop();
    equal(
      out.stderr.split("\n").filter((l) => l.includes("metrics: 'by pid' is full (16 keys)"))
        .length,
      1,
      out.stderr,
    );
  }
});

/** A bpftrace-style bucket label's bounds: `[64, 128)`, `[1K, 2K)`, `[1]`, `(..., 0)`. */
function bucketBounds(label: string): [number, number] {
  const value = (t: string) => {
    const m = /^(-?\d+)([KMGTPE]?)$/.exec(t.trim());
    if (!m) throw new Error(`not a bound: ${t}`);
    return Number(m[1]) * 1024 ** " KMGTPE".indexOf(m[2] || " ");
  };
  const single = /^\[(\S+)\]$/.exec(label);
  if (single) return [value(single[1]), value(single[1]) + 1];
  const m = /^[[(](\.\.\.|[^,]+), (\.\.\.|[^)]+)\)$/.exec(label);
  if (!m) throw new Error(`not a bucket: ${label}`);
  return [m[1] === "..." ? -Infinity : value(m[1]), m[2] === "..." ? Infinity : value(m[2])];
}

/** The bucket of the text histogram holding its median: [low, high). */
function medianBucket(text: string): [number, number] {
  const rows = [...text.matchAll(/^([[(][^|]*?[)\]])\s+(\d+) \|/gm)].map((m) => ({
    bounds: bucketBounds(m[1]),
    count: Number(m[2]),
  }));
  const total = rows.reduce((n, r) => n + r.count, 0);
  let seen = 0;
  for (const r of rows) {
    seen += r.count;
    if (seen >= total / 2) return r.bounds;
  }
  throw new Error(`no histogram in: ${text}`);
}

Deno.test("biolatency --metrics: _count is /proc/diskstats' delta and the median is in the text's median bucket", async () => {
  await withLoopDevice(64, async (dev) => {
    const agent = await Agent.start("scripts/biolatency.ts", "--disk", dev.name, "-q");
    let stdout = "";
    try {
      await using prometheus = await Prometheus.start(agent.address);
      const before = diskstats(dev.name);
      await workload(
        `dd if=/dev/urandom of=${dev.path} bs=64k count=64 oflag=direct status=none && ` +
          `dd if=${dev.path} of=/dev/null bs=4k count=1024 iflag=direct status=none`,
      );
      const after = diskstats(dev.name);
      const ios = after.readsCompleted - before.readsCompleted + after.writesCompleted -
        before.writesCompleted;
      equal(ios, 64 + 1024);
      const count = `tsprobe_block_io_latency_seconds_count{disk="${dev.name}"}`;
      equal((await prometheus.until(count, (s) => s[0]?.value === ios))[0]?.value, ios);
      const median = await prometheus.query(
        `histogram_quantile(0.5, tsprobe_block_io_latency_seconds_bucket{disk="${dev.name}"})`,
      );
      equal(median.length, 1, JSON.stringify(median));
      const bytes = await prometheus.query(`tsprobe_block_io_bytes_total{disk="${dev.name}"}`);
      equal(bytes[0]?.value, 64 * 65536 + 1024 * 4096);
      const out = await agent.stop();
      equal(out.code, 0, out.stderr);
      stdout = out.stdout;
      const [low, high] = medianBucket(stdout);
      const us = median[0].value * 1e6;
      ok(low <= us && us <= high, `median ${us} us outside [${low}, ${high}) of:\n${stdout}`);
    } finally {
      if (!stdout) await agent.stop();
    }
  });
});
