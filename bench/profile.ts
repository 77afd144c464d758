/**
 * The CPU a 99 Hz profile of both CPUs costs the tracer, side by side with bpftrace's
 * `profile:hz:99 { @[kstack, ustack] = count(); }`: each runs for D seconds while a spinning
 * shell loop keeps every CPU busy, and its own user + system CPU time (with its children:
 * Deno's compile step, bpftrace's LLVM) is read from bash's `time`.
 *
 *   tools/run bench/profile.ts [SECONDS]
 */
import { onlineCpus } from "../system/cpus.ts";

const seconds = Number(Deno.args[0] ?? 10);
const root = new URL("..", import.meta.url).pathname;

/** User + system seconds that `command` took, measured by bash's `time`. */
async function cpu(command: string): Promise<number> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `TIMEFORMAT='%U %S'; time (${command} > /dev/null 2>&1)`],
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr).trim();
  const [user, sys] = text.split("\n").at(-1)!.split(" ");
  if (!(Number(user) >= 0 && Number(sys) >= 0)) throw new Error(`no CPU time from: ${text}`);
  return Number(user) + Number(sys);
}

// Every CPU busy, so every sample has a stack to walk and count.
const spinners = onlineCpus().map(() =>
  new Deno.Command("sh", { args: ["-c", "while :; do :; done"] }).spawn()
);
try {
  const ours = await cpu(
    `${Deno.execPath()} run -A ${root}cli.ts -e ` +
      `'profile({ hz: 99 }).count((e) => [e.kstack, e.ustack])' -d ${seconds}s`,
  );
  const theirs = await cpu(
    `timeout -s INT ${seconds} bpftrace -e 'profile:hz:99 { @[kstack, ustack] = count(); }'`,
  );
  console.log(
    `profile 99 Hz on ${spinners.length} CPUs for ${seconds} s: tsprobe ${
      ours.toFixed(2)
    } s CPU, ` +
      `bpftrace ${theirs.toFixed(2)} s CPU (${ours < theirs ? "less" : "MORE"} than bpftrace)`,
  );
} finally {
  for (const s of spinners) {
    s.kill("SIGKILL");
    await s.status;
  }
}
