/**
 * deploy/ as a fleet uses it. The systemd unit's capabilities are exactly what the agent
 * needs: run as the unit runs it (a user of its own, those capabilities and no others, no new
 * privileges, the system read-only but for its cache, empty /tmp and homes), it serves a
 * child's getppid calls counted exactly, and its own recipe; without any one of them it stops
 * with one line naming the capability. The DaemonSet's container, run as it would be (root
 * with only its capabilities), runs the recipe its ConfigMap pins. The dashboard asks only for
 * metrics the recipes serve, in PromQL that promtool accepts; the README's scrape
 * configurations are ones Prometheus accepts.
 *
 * Needs root (to set the agent up as systemd would), setpriv and unshare (util-linux),
 * systemd-analyze and promtool.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { kernelIds, leftBehind } from "../fixtures/left_behind.ts";
import { freePort } from "../../testing/free_port.ts";
import { parseAllDocuments } from "yaml";

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
 * ($1: the agent's cache, $2: this tree, $3...: the command): every mount read-only
 * (ProtectSystem=strict; ProtectControlGroups=) but /proc, /dev, /sys and the cache
 * (CacheDirectory=); an empty /tmp (PrivateTmp=); no homes (ProtectHome=) nor kernel modules
 * (ProtectKernelModules=).
 */
const SANDBOX = `set -e
cache=$1 tree=$2; shift 2
# A checkout in /tmp stays in sight: /tmp is then the host's, writable.
case $tree in /tmp/*) host_tmp=/tmp ;; *) host_tmp= ;; esac
mount --bind "$cache" "$cache"
# --rbind: with what is mounted below /tmp (the 6.1 VM mounts the checkout there).
if [ "$host_tmp" ]; then mount --rbind /tmp /tmp; fi
for m in $(awk '{ print $5 }' /proc/self/mountinfo | sort -u); do
  case $m in
    /proc | /proc/* | /dev | /dev/* | "$cache" | "$host_tmp") ;;
    /sys/fs/cgroup | /sys/fs/cgroup/*) mount -o remount,bind,ro "$m" ;;
    /sys | /sys/*) ;;
    *) mount -o remount,bind,ro "$m" ;;
  esac
done
if [ -z "$host_tmp" ]; then mount -t tmpfs -o mode=1777 tmpfs /tmp; fi
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
async function agentHome(uid = AGENT_UID): Promise<string> {
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
    args: ["-R", `${uid}:${uid}`, `${dir}/cache`],
  }).output();
  ok(own.success, text(own.stderr));
  return dir;
}

/**
 * Spawns tools/probe (what /usr/local/bin/probe runs) with `args` as the unit would run
 * it, with the capabilities `caps` (setpriv's names), as user `uid`.
 */
function spawnAgent(
  home: string,
  caps: string[],
  args: string[],
  uid = AGENT_UID,
): Deno.ChildProcess {
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
      ROOT,
      "setpriv",
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      "--no-new-privs",
      // Root holds what the bounding set leaves it; another user, its ambient set.
      ...(uid === 0 ? [] : [`--inh-caps=${set}`, `--ambient-caps=${set}`]),
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

/**
 * `probe run` of a recipe, spawned by `spawn`, serves an aggregation at `address`; on SIGTERM
 * probe ends by the signal (systemd and Kubernetes count that a clean stop) and the recipe it
 * runs stops with it, leaving nothing in the kernel.
 */
async function servesRecipe(spawn: () => Deno.ChildProcess, address: string): Promise<void> {
  const before = kernelIds();
  const agent = spawn();
  const served = (e: string) => /^tsprobe_aggregation_keys\{/m.test(e);
  const exposition = await scrapeUntil(`http://${address}/metrics`, agent, served);
  const out = await stop(agent);
  ok(served(exposition), `${exposition}\n${out.stderr}`);
  equal(out.signal, "SIGTERM", out.stderr);
  equal(await leftBehind(before), [], "BPF objects left in the kernel");
}

const CAPS = (setting("CapabilityBoundingSet") ?? "").split(/\s+/).filter((c) => c);

Deno.test("the unit runs the agent as a user of its own, with its capabilities ambient, hardened, restarted on failure", async () => {
  // systemd's own reading of it: no unknown setting, no bad value.
  const verify = await new Deno.Command("systemd-analyze", {
    args: ["verify", `${ROOT}deploy/tsprobe-agent.service`],
  }).output();
  equal([verify.code, text(verify.stderr)], [0, ""]);
  equal(setting("DynamicUser"), "yes");
  ok(CAPS.includes("CAP_BPF") && CAPS.includes("CAP_PERFMON"), CAPS.join(" "));
  equal(setting("AmbientCapabilities"), setting("CapabilityBoundingSet"));
  equal(
    ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "Restart"].map(setting),
    ["yes", "strict", "yes", "yes", "on-failure"],
  );
  equal(UNIT_ENV.DENO_DIR, `/var/cache/${setting("CacheDirectory")}`);
});

/**
 * Runs `fn` with perf_event_open open to CAP_PERFMON: Debian's kernels (the 6.1 leg) set
 * kernel.perf_event_paranoid to 3, where it takes CAP_SYS_ADMIN; deploy/README.md says to set
 * 2 there, as this does for the test and undoes after.
 */
async function withPerfmonPerfEvents(fn: () => Promise<void>): Promise<void> {
  const sysctl = "/proc/sys/kernel/perf_event_paranoid";
  const before = (await Deno.readTextFile(sysctl)).trim();
  if (Number(before) > 2) await Deno.writeTextFile(sysctl, "2");
  try {
    await fn();
  } finally {
    if (Number(before) > 2) await Deno.writeTextFile(sysctl, before);
  }
}

Deno.test("with the unit's capabilities and hardening, the agent serves a child's getppid calls counted exactly", async () => {
  const home = await agentHome();
  // -c follows the command's children through classic tracepoints (perf_event_open).
  try {
    await withPerfmonPerfEvents(async () => {
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
    });
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
    await servesRecipe(() => spawnAgent(home, CAPS.map(capName), args), address);
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

/** What the tests read of a container in deploy/daemonset.yaml. */
interface Container {
  command: string[];
  args: string[];
  env: Array<{
    name: string;
    value?: string;
    valueFrom?: { configMapKeyRef: { name: string; key: string } };
  }>;
  ports: Array<{ name: string; containerPort: number }>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: {
    runAsUser: number;
    allowPrivilegeEscalation: boolean;
    readOnlyRootFilesystem: boolean;
    capabilities: { add: string[]; drop: string[] };
  };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

/** What the tests read of the manifests. */
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        hostPID: boolean;
        containers: Container[];
        volumes: Array<{ name: string; hostPath?: { path: string } }>;
      };
    };
  };
}

const MANIFESTS = parseAllDocuments(Deno.readTextFileSync(`${ROOT}deploy/daemonset.yaml`))
  .map((d) => d.toJSON() as Manifest);
const POD = MANIFESTS.find((m) => m.kind === "DaemonSet")!.spec!.template;
const CONTAINER = POD.spec.containers[0];

/** The container's environment, the ConfigMap's values resolved. */
function containerEnv(): Record<string, string> {
  return Object.fromEntries(CONTAINER.env.map((e) => {
    const ref = e.valueFrom?.configMapKeyRef;
    const map = MANIFESTS.find((m) => m.kind === "ConfigMap" && m.metadata.name === ref?.name);
    return [e.name, (ref ? map?.data?.[ref.key] : e.value) ?? ""];
  }));
}

/** Kubernetes' `$(VAR)` in a container's arguments. */
const expandK8s = (args: string[], env: Record<string, string>) =>
  args.map((a) => a.replace(/\$\((\w+)\)/g, (_, name) => env[name]));

Deno.test("the DaemonSet: host pids, BTF, tracefs and debugfs, the capabilities, a pinned recipe from the ConfigMap, a port Prometheus finds, limits", () => {
  equal(POD.spec.hostPID, true);
  const hostPaths = ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/kernel/debug"];
  for (const path of hostPaths) {
    const volume = POD.spec.volumes.find((v) => v.hostPath?.path === path);
    ok(volume, `no hostPath volume of ${path}`);
    const mount = CONTAINER.volumeMounts.find((m) => m.name === volume.name);
    equal([mount?.mountPath, mount?.readOnly], [path, true]);
  }
  const security = CONTAINER.securityContext;
  equal(security.capabilities.drop, ["ALL"]);
  equal(security.capabilities.add, ["BPF", "PERFMON", "SYS_RESOURCE"]);
  equal([security.runAsUser, security.allowPrivilegeEscalation], [0, false]);
  const env = containerEnv();
  const args = expandK8s(CONTAINER.args, env);
  equal([CONTAINER.command, args.slice(0, 2), args[3]], [
    ["probe"],
    ["run", "--integrity"],
    env.RECIPE_URL,
  ]);
  ok(/^sha256-/.test(args[2]) && /^https:\/\//.test(args[3]), args.join(" "));
  const port = CONTAINER.ports.find((p) => p.name === "metrics")!.containerPort;
  equal(args.slice(4), ["--metrics", `0.0.0.0:${port}`]);
  equal(POD.metadata.annotations, {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(port),
    "prometheus.io/path": "/metrics",
  });
  for (const limit of ["cpu", "memory"]) {
    ok(CONTAINER.resources.limits[limit] && CONTAINER.resources.requests[limit], limit);
  }
});

Deno.test("the DaemonSet's container, as it runs (root with only its capabilities, read-only root), runs its pinned recipe and serves its metrics", async () => {
  const env = containerEnv();
  // The recipe's URL is served from this tree, as its host would serve a release of it.
  const path = new URL(env.RECIPE_URL).pathname;
  const release = path.slice(0, path.indexOf("scripts/"));
  const host = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (r) => {
    const file = new URL(r.url).pathname;
    const body = file.startsWith(release)
      ? await Deno.readFile(ROOT + file.slice(release.length)).catch(() => undefined)
      : undefined;
    return new Response(body ?? "not found", { status: body ? 200 : 404 });
  });
  const home = await agentHome(0);
  try {
    const url = `http://127.0.0.1:${host.addr.port}${path}`;
    const pin = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}cli.ts`, "pin", url],
      env: { DENO_DIR: `${home}/cache` },
    }).output();
    ok(pin.success, text(pin.stderr));
    const address = `127.0.0.1:${freePort()}`;
    const args = expandK8s(CONTAINER.args, {
      ...env,
      RECIPE_URL: url,
      RECIPE_INTEGRITY: text(pin.stdout).trim(),
    }).map((a) => a.replace(/^0\.0\.0\.0:\d+$/, address));
    const caps = CONTAINER.securityContext.capabilities.add.map((c) => c.toLowerCase());
    await servesRecipe(() => spawnAgent(home, caps, args, 0), address);
  } finally {
    await host.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});

/** Every PromQL query of the dashboard: its panels' targets and its variables'. */
function dashboardQueries(): string[] {
  const dashboard = JSON.parse(Deno.readTextFileSync(`${ROOT}deploy/grafana-dashboard.json`));
  const queries: string[] = dashboard.templating.list.map((v: { definition: string }) =>
    v.definition
  );
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) queries.push(t.expr);
  }
  return queries;
}

/**
 * The metric names an agent running `file` (a recipe) serves: every family it declares, a
 * histogram's as its `_bucket`, `_sum` and `_count` series.
 */
async function servedNames(file: string): Promise<string[]> {
  const address = `127.0.0.1:${freePort()}`;
  const agent = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${file}`, "--metrics", address, "-q"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const exposition = await scrapeUntil(`http://${address}/metrics`, agent, (e) => e !== "");
  const out = await stop(agent);
  equal(out.code, 0, out.stderr);
  return [...exposition.matchAll(/^# TYPE (\w+) (\w+)$/gm)].flatMap(([, name, type]) =>
    type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => name + s) : [name]
  );
}

Deno.test("the dashboard asks only for metrics the io and aio recipes and the agent serve", async () => {
  const served = new Set([
    ...await servedNames("scripts/biolatency.ts"),
    ...await servedNames("scripts/aio_latency.ts"),
  ]);
  const asked = new Set(dashboardQueries().flatMap((q) => q.match(/\btsprobe_\w+/g) ?? []));
  equal([...asked].filter((name) => !served.has(name)), []);
  // What the issue asks of it: a latency heatmap, IOPS, bytes, AIO quantiles, health.
  for (
    const name of [
      "tsprobe_block_io_latency_seconds_bucket",
      "tsprobe_block_io_latency_seconds_count",
      "tsprobe_block_io_bytes_total",
      "tsprobe_aio_latency_seconds_bucket",
      "tsprobe_events_dropped_total",
      "tsprobe_aggregation_updates_lost_total",
      "tsprobe_data_lost_total",
    ]
  ) ok(asked.has(name), name);
  const queries = dashboardQueries();
  for (const q of [0.5, 0.99]) {
    ok(queries.some((x) => x.startsWith(`histogram_quantile(${q}, `) && x.includes("aio")), `${q}`);
  }
});

Deno.test("the dashboard's queries are PromQL that promtool accepts", async () => {
  // Grafana's variables as values, each query a recording rule for promtool to parse.
  const rules = dashboardQueries().map((q) =>
    q.replaceAll("$__rate_interval", "1m").replace(/\$\w+/g, ".*")
      .replace(/^label_values\((.+), \w+\)$/, "$1")
  );
  const file = await Deno.makeTempFile({ suffix: ".yml" });
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        groups: [{ name: "dashboard", rules: rules.map((expr, i) => ({ record: `q${i}`, expr })) }],
      }),
    );
    const check = await new Deno.Command("promtool", { args: ["check", "rules", file] }).output();
    equal(check.code, 0, text(check.stdout) + text(check.stderr));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("the scrape configurations in deploy/README.md are ones Prometheus accepts", async () => {
  const readme = Deno.readTextFileSync(`${ROOT}deploy/README.md`);
  const configs = [...readme.matchAll(/```yaml\n(scrape_configs:[\s\S]*?)```/g)].map((m) => m[1]);
  equal(configs.length, 2);
  for (const block of configs) {
    // Debian's Prometheus is built without Kubernetes discovery: its relabeling is checked
    // on a static target.
    const config = block.replace(
      /^( +)kubernetes_sd_configs:\n[\s\S]*?(?=^\1relabel_configs:)/m,
      '$1static_configs:\n$1  - targets: ["127.0.0.1:9464"]\n',
    );
    const file = await Deno.makeTempFile({ suffix: ".yml" });
    try {
      await Deno.writeTextFile(file, config);
      const check = await new Deno.Command("promtool", { args: ["check", "config", file] })
        .output();
      equal(check.code, 0, config + text(check.stdout) + text(check.stderr));
    } finally {
      await Deno.remove(file);
    }
  }
});
