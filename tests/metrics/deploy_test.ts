/**
 * deploy/ as a fleet uses it. The systemd unit's capabilities are exactly what the agent
 * needs: run as the unit runs it (a user of its own, those capabilities and no others, no new
 * privileges, the system read-only but for its cache, empty /tmp and homes), it serves a
 * child's getppid calls counted exactly, and its own recipe; without any one of them it stops
 * with one line naming the capability.
 *
 * Needs root (to set the agent up as systemd would), setpriv and unshare (util-linux).
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { kernelIds, leftBehind } from "../fixtures/left_behind.ts";
import { freePort } from "../fixtures/prometheus.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The settings of one section of a systemd unit file, each key's values in order. */
function unitSection(file: string, section: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let current = "";
  for (const line of Deno.readTextFileSync(file).split("\n")) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) current = header[1];
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (current === section && m) settings.set(m[1], [...settings.get(m[1]) ?? [], m[2]]);
  }
  return settings;
}

const SERVICE = unitSection(`${ROOT}deploy/tsprobe-agent.service`, "Service");
const setting = (key: string) => SERVICE.get(key)?.at(-1);

/** The unit's `Environment=` variables (the last of each wins, as in systemd). */
const UNIT_ENV = Object.fromEntries(
  (SERVICE.get("Environment") ?? []).map((
    e,
  ) => [e.slice(0, e.indexOf("=")), e.slice(1 + e.indexOf("="))]),
);

/**
 * A command line as systemd expands it: `$VAR` is the variable split at whitespace (none when
 * empty), `${VAR}` exactly one word.
 */
function expand(line: string, env: Record<string, string>): string[] {
  return line.split(/\s+/).flatMap((word) => {
    const whole = /^\$\{(\w+)\}$/.exec(word);
    if (whole) return [env[whole[1]] ?? ""];
    const split = /^\$(\w+)$/.exec(word);
    return split ? (env[split[1]] ?? "").split(/\s+/).filter((w) => w) : [word];
  });
}

/** `CAP_BPF` as setpriv names it: `bpf`. */
const capName = (cap: string) => cap.replace(/^CAP_/, "").toLowerCase();

/**
 * Sets up the mounts the unit's hardening gives the agent, in a mount namespace of its own
 * ($1: the directory holding the agent's cache, $2...: the command): every mount read-only
 * (ProtectSystem=strict; ProtectControlGroups=) but /proc, /dev, /sys and the cache
 * (CacheDirectory=); an empty /tmp (PrivateTmp=); no homes (ProtectHome=) nor kernel modules
 * (ProtectKernelModules=).
 */
const SANDBOX = `set -e
cache=$1; shift
mount --bind "$cache" "$cache"
for m in $(awk '{ print $5 }' /proc/self/mountinfo | sort -u); do
  case $m in
    /proc | /proc/* | /dev | /dev/* | "$cache") ;;
    /sys/fs/cgroup | /sys/fs/cgroup/*) mount -o remount,bind,ro "$m" ;;
    /sys | /sys/*) ;;
    *) mount -o remount,bind,ro "$m" ;;
  esac
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in /home /root /run/user /usr/lib/modules; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=000 tmpfs "$d"; fi
done
exec "$@"`;

/** The unit's user: systemd allocates one (DynamicUser=); nobody stands in for it here. */
const AGENT_UID = 65534;

/**
 * A directory for the agent, as the unit has it: Deno on the PATH (a link to this one: the
 * agent's user cannot enter root's home), and Deno's cache, writable by the agent only, with
 * the npm packages tsprobe imports (as the service's first start would fetch them).
 */
async function agentHome(): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tsprobe-deploy-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/bin`);
  await Deno.link(Deno.execPath(), `${dir}/bin/deno`).catch(() =>
    Deno.copyFile(Deno.execPath(), `${dir}/bin/deno`)
  );
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const denoDir = JSON.parse(text(info.stdout)).denoDir as string;
  await Deno.mkdir(`${dir}/cache`);
  const copy = await new Deno.Command("cp", { args: ["-r", `${denoDir}/npm`, `${dir}/cache/`] })
    .output();
  ok(copy.success, text(copy.stderr));
  const own = await new Deno.Command("chown", {
    args: ["-R", `${AGENT_UID}:${AGENT_UID}`, `${dir}/cache`],
  }).output();
  ok(own.success, text(own.stderr));
  return dir;
}

/**
 * Spawns tools/probe (what /usr/local/bin/probe links to) with `args` as the unit would run
 * it, with the capabilities `caps` (setpriv's names).
 */
function spawnAgent(home: string, caps: string[], args: string[]): Deno.ChildProcess {
  const set = `-all,${caps.map((c) => `+${c}`).join(",")}`;
  return new Deno.Command("unshare", {
    args: [
      "--mount",
      "--propagation=private",
      "sh",
      "-c",
      SANDBOX,
      "sandbox",
      `${home}/cache`,
      "setpriv",
      `--reuid=${AGENT_UID}`,
      `--regid=${AGENT_UID}`,
      "--clear-groups",
      "--no-new-privs",
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
      `--bounding-set=${set}`,
      "--",
      "env",
      "-i",
      // The home of systemd's dynamic users.
      "HOME=/",
      `PATH=${home}/bin:/usr/bin:/bin`,
      `DENO_DIR=${home}/cache`,
      "DENO_NO_UPDATE_CHECK=1",
      `${ROOT}tools/probe`,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The exposition at `url` once `ready` holds for it (the agent may still be starting). */
async function scrapeUntil(
  url: string,
  agent: Deno.ChildProcess,
  ready: (exposition: string) => boolean,
): Promise<string> {
  let exposition = "";
  const exited = agent.status.then(() => true);
  for (let i = 0; i < 600 && !ready(exposition); i++) {
    if (await Promise.race([exited, new Promise((r) => setTimeout(() => r(false), 50))])) break;
    exposition = await fetch(url).then((r) => r.text()).catch(() => "");
  }
  return exposition;
}

/**
 * SIGTERM to the agent (every exec of the chain kept its pid), as systemd stops it; its exit
 * code, signal and stderr.
 */
async function stop(agent: Deno.ChildProcess) {
  try {
    agent.kill("SIGTERM");
  } catch { /* it exited */ }
  const out = await agent.output();
  return { code: out.code, signal: out.signal, stderr: text(out.stderr) };
}

const CAPS = (setting("CapabilityBoundingSet") ?? "").split(/\s+/).filter((c) => c);

Deno.test("the unit runs the agent as a user of its own, with its capabilities ambient, hardened, restarted on failure", () => {
  equal(setting("DynamicUser"), "yes");
  ok(CAPS.includes("CAP_BPF") && CAPS.includes("CAP_PERFMON"), CAPS.join(" "));
  equal(setting("AmbientCapabilities"), setting("CapabilityBoundingSet"));
  equal(
    ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "Restart"].map(setting),
    ["yes", "strict", "yes", "yes", "on-failure"],
  );
  equal(UNIT_ENV.DENO_DIR, `/var/cache/${setting("CacheDirectory")}`);
});

Deno.test("with the unit's capabilities and hardening, the agent serves a child's getppid calls counted exactly", async () => {
  const home = await agentHome();
  try {
    const calls = 1234;
    const url = `http://127.0.0.1:${freePort()}/metrics`;
    const agent = spawnAgent(home, CAPS.map(capName), [
      "-e",
      'syscall.on("getppid").count((e) => ({ comm: e.comm }), { title: "getppid" })',
      // sh calls getppid once itself: perl's are counted apart, by comm.
      "-c",
      `perl -e 'getppid() for 1..${calls}; sleep 600'`,
      "--metrics",
      new URL(url).host,
      "-q",
    ]);
    const series = `tsprobe_getppid_total{comm="perl"} ${calls}\n`;
    const exposition = await scrapeUntil(url, agent, (e) => e.includes(series));
    const out = await stop(agent);
    ok(exposition.includes(series), `${exposition}\n${out.stderr}`);
    equal(out.code, 0, out.stderr);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the unit's own command line, as systemd expands it, serves its recipe's metrics", async () => {
  const home = await agentHome();
  try {
    const address = `127.0.0.1:${freePort()}`;
    const [probe, ...args] = expand(setting("ExecStart")!, { ...UNIT_ENV, METRICS: address })
      .map((w) => w.replace(/^\/opt\/tsprobe\//, ROOT));
    equal(probe, "/usr/local/bin/probe");
    const before = kernelIds();
    const agent = spawnAgent(home, CAPS.map(capName), args);
    const exposition = await scrapeUntil(
      `http://${address}/metrics`,
      agent,
      (e) => /^tsprobe_aggregation_keys\{/m.test(e),
    );
    // probe run ends by the signal (systemd counts that a clean stop); the recipe it runs
    // stops with it and unloads.
    const out = await stop(agent);
    ok(/^tsprobe_aggregation_keys\{/m.test(exposition), `${exposition}\n${out.stderr}`);
    equal(out.signal, "SIGTERM", out.stderr);
    equal(await leftBehind(before), [], "BPF objects left in the kernel");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("without any one of the unit's capabilities, the agent stops with one line naming it", async () => {
  const home = await agentHome();
  try {
    for (const cap of CAPS) {
      const agent = spawnAgent(home, CAPS.filter((c) => c !== cap).map(capName), [
        "-e",
        'syscall.on("getppid").count()',
        "-c",
        "true",
        "-q",
      ]);
      const out = await agent.output();
      const stderr = text(out.stderr);
      equal(out.code, 1, `${cap}: ${stderr}`);
      equal(stderr.trimEnd().split("\n").length, 1, `${cap}: ${stderr}`);
      ok(stderr.startsWith("probe: ") && stderr.includes(cap), `${cap}: ${stderr}`);
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
