/**
 * Serving metrics, against issue 16's targets: a scrape of 10,000 series under 50 ms, the
 * agent's resident memory while serving them under 80 MB, and the same per-event cost with and
 * without --metrics.
 *
 * 10,000 series: an agent (`probe -e ... --metrics`) counts a perl child's close(2) calls by
 * fd, the child closing each of 10,000 fds that are not open once, then sleeping; the agent is
 * scraped over HTTP (the median of SCRAPES, after a few to warm up) and its VmRSS read. Where a
 * scrape's time goes: the same aggregation in this process, each stage timed (the kernel's map
 * read and decoded, the metric families, the text).
 *
 * Per-event cost: syscount traces a perl child that times its own 2,000,000 getppid calls (its
 * CPU time), with and without --metrics (scraped every second, as a hurried Prometheus would), beside untraced
 * runs, interleaved for ROUNDS rounds; the cost is what tracing adds to a call.
 *
 *   tools/run bench/metrics.ts [SCRAPES] [ROUNDS]
 */
import { run, syscall } from "../mod.ts";
import { exposition } from "../runtime/metrics/exposition.ts";
import { aggregationFamilies } from "../runtime/metrics/families.ts";
import { freePort } from "../testing/free_port.ts";
import { median } from "./fixtures/bpftrace.ts";
import { probeCommand } from "./fixtures/probe_command.ts";

const scrapes = Number(Deno.args[0] ?? 50);
const rounds = Number(Deno.args[1] ?? 5);
const root = new URL("..", import.meta.url).pathname;

const SERIES = 10_000;
const FIRST_FD = 100_000;
/** The aggregation of 10,000 series: a counter per fd closed. */
const CLOSES = "closes";
/** Closes 10,000 fds that are not open (each a close(2) all the same), then waits. */
const CLOSER = [
  "perl",
  "-e",
  `syscall(3, $_) for ${FIRST_FD}..${FIRST_FD + SERIES - 1}; sleep 3600`,
];
/** `tsprobe_closes_total{fd="..."}`: a series of the one-liner. */
const SERIES_LINE = new RegExp(`^tsprobe_${CLOSES}_total\\{`, "gm");

const CALLS = 2_000_000;

/** Milliseconds `fn` took. */
async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** The agent's scrape times, exposition and memory once it serves 10,000 series. */
async function agentScrapes() {
  const address = `127.0.0.1:${freePort()}`;
  const url = `http://${address}/metrics`;
  // As a user or systemd starts it, with the V8 flags probe runs Deno with.
  const agent = new Deno.Command(await probeCommand(), {
    args: [
      "-e",
      `syscall.on("close:entry").count((e) => ({ fd: e.args.fd }), ` +
      `{ title: "${CLOSES}", size: 16384 })`,
      "-c",
      CLOSER.map((a) => `'${a}'`).join(" "),
      "--metrics",
      address,
      "-q",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const megabytes = async (field: string) => {
    const status = await Deno.readTextFile(`/proc/${agent.pid}/status`);
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)![1]) / 1024;
  };
  try {
    // Serving (any other path is a 404, and reads no map), then the child's calls done.
    for (let i = 0; !(await fetch(`http://${address}/`).then((r) => r.text(), () => "")); i++) {
      if (i === 1200) throw new Error("the agent did not serve in 60 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const before = await megabytes("VmRSS");
    const text = await fetch(url).then((r) => r.text());
    const found = text.match(SERIES_LINE)?.length ?? 0;
    if (found < SERIES) throw new Error(`the agent served ${found} series, not ${SERIES}`);
    for (let i = 0; i < 5; i++) await fetch(url).then((r) => r.text());
    const times: number[] = [];
    for (let i = 0; i < scrapes; i++) {
      times.push(await timed(() => fetch(url).then((r) => r.text())));
    }
    return {
      times,
      series: text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length,
      bytes: text.length,
      beforeMb: before,
      rssMb: await megabytes("VmRSS"),
      peakMb: await megabytes("VmHWM"),
    };
  } finally {
    agent.kill("SIGTERM");
    await agent.status;
  }
}

/** The stages of a scrape of the same aggregation, in this process: median ms of each. */
async function stages() {
  const closes = syscall.on("close:entry")
    .count((e) => ({ fd: e.args.fd }), { title: CLOSES, size: 16384 });
  const stop = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => attached = r);
  const session = run({
    command: CLOSER,
    signal: stop.signal,
    printAggregations: false,
    onAttached: attached,
  });
  await ready;
  try {
    while ((closes.read()?.rows.length ?? 0) < SERIES) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const read: number[] = [], families: number[] = [], text: number[] = [];
    for (let i = 0; i < scrapes + 5; i++) {
      let data, f;
      const times = [
        await timed(() => data = closes.read()!),
        await timed(() => f = aggregationFamilies(data!, "tsprobe")),
        await timed(() => exposition(f!)),
      ];
      if (i < 5) continue; // warming up
      [read, families, text].forEach((xs, j) => xs.push(times[j]));
    }
    return { read: median(read), families: median(families), text: median(text) };
  } finally {
    stop.abort();
    await session;
  }
}

/** Nanoseconds a getppid call of a perl child took: untraced, or under syscount. */
async function perCall(tracing: "none" | "syscount" | "syscount --metrics"): Promise<number> {
  const out = await Deno.makeTempFile({ prefix: "tsprobe-bench-metrics-" });
  try {
    // Its own CPU time, which the probe's work in the kernel is part of, and other
    // processes' load on the machine is not.
    const perl = `perl -MTime::HiRes=clock_gettime,CLOCK_PROCESS_CPUTIME_ID -e '` +
      `$t = clock_gettime(CLOCK_PROCESS_CPUTIME_ID); syscall(110) for 1..${CALLS}; ` +
      `open my $f, ">", "${out}"; print $f clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $t'`;
    const address = `127.0.0.1:${freePort()}`;
    const metrics = tracing === "syscount --metrics" ? ["--metrics", address] : [];
    const command = tracing === "none"
      ? new Deno.Command("sh", { args: ["-c", perl] })
      : new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${root}scripts/syscount.ts`, "-c", perl, "-q", ...metrics],
        stdout: "null",
      });
    const child = command.spawn();
    // A Prometheus scraping every second, while the child runs.
    const scraper = metrics.length
      ? setInterval(() => fetch(`http://${address}/metrics`).then((r) => r.text(), () => {}), 1000)
      : undefined;
    const status = await child.status;
    clearInterval(scraper);
    if (!status.success) throw new Error(`${tracing}: exit ${status.code}`);
    return Number(await Deno.readTextFile(out)) * 1e9 / CALLS;
  } finally {
    await Deno.remove(out);
  }
}

const verdict = (pass: boolean) => (pass ? "PASS" : "FAIL");

const agent = await agentScrapes();
const scrape = median(agent.times);
console.log(
  `metrics: a scrape of ${agent.series} series (${(agent.bytes / 1024).toFixed(0)} KiB) over ` +
    `HTTP: median ${scrape.toFixed(1)} ms, fastest ${Math.min(...agent.times).toFixed(1)}, ` +
    `slowest ${Math.max(...agent.times).toFixed(1)} (${scrapes} scrapes) — target < 50 ms: ` +
    verdict(scrape < 50),
);
console.log(
  `metrics: the agent's resident memory serving them: ${agent.rssMb.toFixed(1)} MB after ` +
    `${scrapes + 6} scrapes (peak ${agent.peakMb.toFixed(1)} MB; ${agent.beforeMb.toFixed(1)} MB ` +
    `before the first) — target < 80 MB: ${verdict(agent.peakMb < 80)}`,
);
const s = await stages();
console.log(
  `metrics: where a scrape's time goes (the same aggregation in this process, medians): the ` +
    `kernel's map read and decoded ${s.read.toFixed(1)} ms, metric families ` +
    `${s.families.toFixed(1)} ms, text ${s.text.toFixed(1)} ms`,
);

const none: number[] = [], plain: number[] = [], served: number[] = [];
for (let i = 0; i < rounds; i++) {
  none.push(await perCall("none"));
  plain.push(await perCall("syscount"));
  served.push(await perCall("syscount --metrics"));
  console.error(
    `round ${i + 1}: ${[none, plain, served].map((x) => x.at(-1)!.toFixed(0))} ns a call ` +
      `(untraced, syscount, syscount --metrics)`,
  );
}
const without = median(plain) - median(none);
const withMetrics = median(served) - median(none);
// The same: within 10% of the cost, or 5 ns, whichever is larger (the noise of a round).
const same = Math.abs(withMetrics - without) <= Math.max(5, 0.1 * without);
console.log(
  `metrics: per-event cost of syscount (a getppid call traced): ${without.toFixed(0)} ns ` +
    `without --metrics, ${withMetrics.toFixed(0)} ns with it, scraped every second ` +
    `(untraced call ${median(none).toFixed(0)} ns; medians of ${rounds} rounds of ` +
    `${CALLS / 1e6}M calls) — target the same: ${verdict(same)}`,
);
