/**
 * Start-up time and memory of a 2-probe script, against bpftrace running the same probes.
 *
 * Measures, over several runs, the time from spawning the script to all probes attached (target
 * <= 150 ms), and the resident memory of the running session (target <= 60 MB). bpftrace's time
 * is from its spawn to its "Attaching 2 probes" line (printed before it attaches).
 *
 *   tools/run bench/startup.ts [RUNS]
 */
const runs = Number(Deno.args[0] ?? 5);
const here = new URL(".", import.meta.url).pathname;

/** Milliseconds from spawning `cmd` to a stdout line containing `marker`; then `after` lines. */
async function timeTo(
  cmd: string,
  args: string[],
  marker: string,
  after = 0,
): Promise<{ ms: number; lines: string[] } | undefined> {
  let proc;
  try {
    proc = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).spawn();
  } catch {
    return undefined; // not installed
  }
  const t0 = performance.now();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let ms = NaN;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (Number.isNaN(ms) && text.includes(marker)) ms = performance.now() - t0;
    const rest = text.slice(text.indexOf(marker)).split("\n").slice(1).filter((l) => l);
    if (!Number.isNaN(ms) && rest.length >= after) {
      proc.kill("SIGKILL");
      await reader.cancel().catch(() => {});
      await proc.status;
      return { ms, lines: rest };
    }
  }
  await proc.status;
  return Number.isNaN(ms) ? undefined : { ms, lines: [] };
}

const BPFTRACE = "tracepoint:syscalls:sys_enter_openat { @a = count(); } " +
  "tracepoint:syscalls:sys_exit_read { @b = count(); }";

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ours = [];
const rss = [];
const theirs = [];
for (let i = 0; i < runs; i++) {
  const r = await timeTo(
    Deno.execPath(),
    ["run", "-A", `${here}fixtures/two_probes.ts`],
    "attached",
    1,
  );
  if (!r) throw new Error("bench/fixtures/two_probes.ts did not attach");
  ours.push(r.ms);
  rss.push(Number(r.lines[0]));
  const b = await timeTo("bpftrace", ["-e", BPFTRACE], "Attaching");
  if (b) theirs.push(b.ms);
}
console.log(
  `startup: tsprobe ${median(ours).toFixed(0)} ms from spawn to 2 probes attached ` +
    `(median of ${runs}), RSS ${median(rss).toFixed(1)} MB while running` +
    (theirs.length ? `; bpftrace ${median(theirs).toFixed(0)} ms to its "Attaching" line` : ""),
);
