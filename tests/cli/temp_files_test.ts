/**
 * The probe command leaves nothing in the temporary directory, however it ends: a one-liner
 * that calls Deno.exit(), a one-liner killed with SIGKILL while tracing, a pinned remote
 * recipe whose probe is killed with SIGKILL while the recipe traces. Each runs with a private
 * TMPDIR, so other processes cannot disturb the count.
 *
 * Needs root and libbpf.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs `fn` with a fresh directory for TMPDIR; returns what was left in it. */
async function leftIn(fn: (tmp: string) => Promise<void>): Promise<string[]> {
  const tmp = await Deno.makeTempDir({ prefix: "tsprobe-tmpdir-" });
  try {
    await fn(tmp);
    return [...Deno.readDirSync(tmp)].map((e) => e.name);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

function probe(tmp: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli.ts`, ...args],
    env: { TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Resolves once `stream` has given `n` bytes (or ended); keeps draining it after. */
function after(stream: ReadableStream<Uint8Array>, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    stream.pipeTo(
      new WritableStream({
        write(chunk) {
          seen += chunk.length;
          if (seen >= n) resolve();
        },
        close: () => resolve(),
      }),
    ).catch(() => resolve());
  });
}

Deno.test("a one-liner that calls Deno.exit() leaves no file behind", async () => {
  const left = await leftIn(async (tmp) => {
    const r = await probe(tmp, ["-e", "Deno.exit(3)"]).output();
    equal(r.code, 3, new TextDecoder().decode(r.stderr));
  });
  equal(left, []);
});

Deno.test("a one-liner killed with SIGKILL while tracing leaves no file behind", async () => {
  const left = await leftIn(async (tmp) => {
    // Each interval prints its time: the first one says it is tracing.
    const child = probe(tmp, ["-e", "syscall.on('getppid:entry').count()", "-i", "100ms"]);
    const drained = after(child.stderr, Infinity);
    await after(child.stdout, 1);
    child.kill("SIGKILL");
    equal((await child.status).signal, "SIGKILL");
    await drained;
  });
  equal(left, []);
});

Deno.test("probe run URL killed with SIGKILL while its recipe traces leaves no file behind", async () => {
  // The repository, served over HTTP as a recipe host would.
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await Deno.readFile(ROOT + new URL(req.url).pathname.slice(1)).catch(() => null);
    return body === null
      ? new Response("not found", { status: 404 })
      : new Response(body, { headers: { "content-type": "application/typescript" } });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/scripts/syscount.ts`;
    const left = await leftIn(async (tmp) => {
      const pin = await probe(tmp, ["pin", url]).output();
      equal(pin.code, 0, new TextDecoder().decode(pin.stderr));
      const integrity = new TextDecoder().decode(pin.stdout).trim();
      const child = probe(tmp, ["run", "--integrity", integrity, url, "-a", "-i", "100ms"]);
      const drained = after(child.stderr, Infinity);
      // The recipe (probe's child) prints each interval once it traces.
      await after(child.stdout, 1);
      const recipe = Number(
        (await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/children`)).trim()
          .split(" ")[0],
      );
      ok(recipe > 0, "the recipe runs as probe's child");
      child.kill("SIGKILL");
      equal((await child.status).signal, "SIGKILL");
      // The recipe outlives probe; it is ended here, as its user would end it.
      Deno.kill(recipe, "SIGINT");
      while (await Deno.stat(`/proc/${recipe}`).then(() => true, () => false)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await drained;
    });
    equal(left, []);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe pin and run URL remove the temporary entries whose owner died, and only those", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () =>
      new Response("export const v = 1;", {
        headers: { "content-type": "application/typescript" },
      }),
  );
  try {
    const stat = await Deno.readTextFile("/proc/self/stat");
    const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    // This test's process is alive: its own entry stays; one with its pid but another start
    // time is a dead process's whose pid was reused; a pid above pid_max cannot be alive.
    const live = `probe-remote-${Deno.pid}.${started}-live`;
    const reused = `probe-remote-${Deno.pid}.${Number(started) + 1}-reused`;
    const dead = "probe-remote-99999999.1-dead";
    const deadFile = "probe-file-99999999.1-dead"; // the lockfile's name, for microseconds
    const left = await leftIn(async (tmp) => {
      for (const name of [live, reused, dead, "probe-remote-unowned"]) {
        await Deno.mkdir(`${tmp}/${name}`);
        await Deno.writeTextFile(`${tmp}/${name}/deno.lock`, "{}");
      }
      await Deno.writeTextFile(`${tmp}/${deadFile}`, "{}");
      const url = `http://127.0.0.1:${server.addr.port}/r.ts`;
      const pin = await probe(tmp, ["pin", url]).output();
      equal(pin.code, 0, new TextDecoder().decode(pin.stderr));
      const integrity = new TextDecoder().decode(pin.stdout).trim();
      const run = await probe(tmp, ["run", "--integrity", integrity, url]).output();
      equal(run.code, 0, new TextDecoder().decode(run.stderr));
    });
    equal(left.sort(), [live, "probe-remote-unowned"]);
  } finally {
    await server.shutdown();
  }
});
