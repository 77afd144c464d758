/**
 * The session lifecycle against the running kernel: however a run ends (SIGINT, SIGTERM, a
 * throwing handler, SIGKILL of the runner, `exit()`, its duration), none of the programs, links
 * and maps it created stay in the kernel; and misspelled probes fail with one-line errors.
 *
 * Ownership is read from `/proc/<pid>/fdinfo` (bpftool only lists owner pids when it is built
 * with BPF skeletons, which Debian's is not), and bpftool's lists are taken as the kernel's
 * word on which objects exist. Everything is filtered by owner pid or by id, so BPF objects of
 * other processes cannot disturb these tests.
 *
 * Needs root (or CAP_BPF and CAP_PERFMON), libbpf, bpftool and perl.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import {
  ArgumentError,
  exit,
  ProbeNotFoundError,
  run,
  session,
  syscall,
  tracepoint,
} from "../../mod.ts";
import { exists } from "../fixtures/bpf.ts";

const FIXTURE = new URL("../fixtures/trace_forever.ts", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;
const BPFTOOL = ["/usr/sbin/bpftool", "/usr/bin/bpftool"].find(exists) ?? "bpftool";
/** How long the kernel may take to free objects once their last fd is gone. */
const RELEASE_MS = 3000;
/** Failure deadlines only (a slow machine passes, a hang fails); no test asserts a duration. */
const READY_MS = 60_000;
const EXIT_MS = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = "prog" | "link" | "map";
const KINDS: Kind[] = ["prog", "link", "map"];

/** BPF object ids by kind. */
type Ids = Record<Kind, Set<number>>;

const emptyIds = (): Ids => ({ prog: new Set(), link: new Set(), map: new Set() });

/** One entry of `bpftool <kind> list -j`. */
interface BpftoolEntry {
  id: number;
  name?: string;
  pids?: { pid: number; comm: string }[];
}

function bpftool(kind: Kind): BpftoolEntry[] {
  const out = new Deno.Command(BPFTOOL, {
    args: ["-j", kind, "list"],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.success, `bpftool ${kind} list failed: ${new TextDecoder().decode(out.stderr)}`);
  return text ? JSON.parse(text) : [];
}

/** Every BPF object that exists now, by kind, as bpftool lists them. */
function kernelObjects(): Record<Kind, Map<number, BpftoolEntry>> {
  const all = {} as Record<Kind, Map<number, BpftoolEntry>>;
  for (const kind of KINDS) all[kind] = new Map(bpftool(kind).map((e) => [e.id, e]));
  return all;
}

const FD_KINDS: Record<string, [Kind, string]> = {
  "anon_inode:bpf-prog": ["prog", "prog_id"],
  "anon_inode:bpf_link": ["link", "link_id"],
  "anon_inode:bpf-map": ["map", "map_id"],
};

/**
 * The BPF objects process `pid` holds an fd of: from its fdinfo, and from bpftool's `pids`
 * where this bpftool reports them.
 */
function ownedIds(pid: number): Ids {
  const ids = emptyIds();
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/fd`)];
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const { name } of entries) {
    try {
      const kind = FD_KINDS[Deno.readLinkSync(`/proc/${pid}/fd/${name}`)];
      if (!kind) continue;
      const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${name}`);
      const m = new RegExp(`^${kind[1]}:\\s*(\\d+)$`, "m").exec(info);
      if (m) ids[kind[0]].add(Number(m[1]));
    } catch {
      // The fd was closed while we looked: it is not owned any more.
    }
  }
  for (const kind of KINDS) {
    for (const e of bpftool(kind)) {
      if (e.pids?.some((p) => p.pid === pid)) ids[kind].add(e.id);
    }
  }
  return ids;
}

function minus(a: Ids, b: Ids): Ids {
  const out = emptyIds();
  for (const kind of KINDS) for (const id of a[kind]) if (!b[kind].has(id)) out[kind].add(id);
  return out;
}

function describe(ids: Ids): string {
  return KINDS.map((k) => `${k} [${[...ids[k]].join(", ")}]`).join(", ");
}

/** The ids of `ids` that the kernel still lists. */
function surviving(ids: Ids): Ids {
  const now = kernelObjects();
  const out = emptyIds();
  for (const kind of KINDS) for (const id of ids[kind]) if (now[kind].has(id)) out[kind].add(id);
  return out;
}

/** Polls bpftool until none of `ids` exists, for up to {@link RELEASE_MS}; fails otherwise. */
async function assertReleased(ids: Ids, what: string): Promise<void> {
  const deadline = Date.now() + RELEASE_MS;
  let left = surviving(ids);
  while (KINDS.some((k) => left[k].size > 0) && Date.now() < deadline) {
    await sleep(50);
    left = surviving(ids);
  }
  assert(
    KINDS.every((k) => left[k].size === 0),
    `${what}: still in the kernel after ${RELEASE_MS} ms: ${describe(left)}`,
  );
}

/**
 * Checks that the kernel listed (in `now`, by default as it is now) at least one object of each
 * kind in `ids` and every one of them; returns the names of its programs and maps, sorted.
 */
function assertListed(ids: Ids, now = kernelObjects()): { progs: string[]; maps: string[] } {
  for (const kind of KINDS) {
    const ids_ = ids[kind];
    assert(ids_.size > 0, `no ${kind} owned: ${describe(ids)}`);
    for (const id of ids_) assert(now[kind].has(id), `bpftool does not list ${kind} ${id}`);
  }
  const names = (kind: Kind) => [...ids[kind]].map((id) => now[kind].get(id)?.name ?? "").sort();
  return { progs: names("prog"), maps: names("map") };
}

/** A process making getppid(2) calls in a loop (syscall 110 on x86-64), to trigger probes. */
function getppidLoop(): Deno.ChildProcess {
  return new Deno.Command("perl", {
    args: ["-e", "while (1) { syscall(110); select(undef, undef, undef, 0.01) }"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function stop(proc: Deno.ChildProcess): Promise<void> {
  try {
    proc.kill("SIGKILL");
  } catch {
    // already exited
  }
  await proc.status;
}

/** Resolves with `p`, or rejects once `ms` pass. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The fixture script running in a `deno` subprocess, its output collected as it comes. */
class Fixture {
  readonly proc: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #done: Promise<unknown>;
  exited = false;

  constructor(mode: "wait" | "throw") {
    this.proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", FIXTURE, mode],
      cwd: ROOT,
      stdin: mode === "throw" ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) this[into] += chunk;
    };
    this.#done = Promise.all([
      collect(this.proc.stdout, "stdout"),
      collect(this.proc.stderr, "stderr"),
      this.proc.status.then(() => (this.exited = true)),
    ]);
  }

  /** Waits for the "ready <pid>" line (the probes are attached), making events meanwhile. */
  async ready(): Promise<number> {
    const deadline = Date.now() + READY_MS;
    while (true) {
      const m = /^ready (\d+)$/m.exec(this.stdout);
      if (m) return Number(m[1]);
      if (this.exited) {
        throw new Error(`the fixture exited before it was ready:\n${this.stdout}${this.stderr}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`the fixture was not ready within ${READY_MS} ms:\n${this.stderr}`);
      }
      await sleep(20);
    }
  }

  /** Waits for the process to exit and its output to end. */
  async status(): Promise<Deno.CommandStatus> {
    await within(this.#done, EXIT_MS, "waiting for the fixture to exit");
    return await this.proc.status;
  }

  /** Kills the process if it still runs, and waits for it (for `finally`). */
  async dispose(): Promise<void> {
    if (!this.exited) {
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await this.#done.catch(() => {});
  }
}

/**
 * Starts the fixture, waits until its probes are attached, checks the kernel lists what it
 * owns, and returns those ids.
 */
async function startTracing(fixture: Fixture): Promise<Ids> {
  const pid = await fixture.ready();
  assertEquals(pid, fixture.proc.pid);
  const ids = ownedIds(pid);
  const { progs, maps } = assertListed(ids);
  assertEquals(progs, ["sye_getppid", "syr_getppid", "sys_getppid", "tp_sched_proces"]);
  assertEquals(maps, ["counters", "events", "scratch", "sys_state0"]);
  return ids;
}

async function signalTest(signal: "SIGINT" | "SIGTERM"): Promise<void> {
  const load = getppidLoop();
  const fixture = new Fixture("wait");
  try {
    const ids = await startTracing(fixture);
    fixture.proc.kill(signal);
    const status = await fixture.status();
    // run() returns normally on a signal, so the script ends like any other.
    assertEquals(
      { code: status.code, signal: status.signal },
      { code: 0, signal: null },
      fixture.stderr,
    );
    // The session closed its own fds before run() returned, not only the exit of the process.
    assert(/^stopped signal bpf-fds=0$/m.test(fixture.stdout), fixture.stdout);
    await assertReleased(ids, `after ${signal}`);
  } finally {
    await fixture.dispose();
    await stop(load);
  }
}

Deno.test("SIGINT ends a run normally and frees its programs, links and maps", async () => {
  await signalTest("SIGINT");
});

Deno.test("SIGTERM ends a run normally and frees its programs, links and maps", async () => {
  await signalTest("SIGTERM");
});

Deno.test("a handler that throws ends the script with an error and frees everything", async () => {
  const load = getppidLoop();
  const fixture = new Fixture("throw");
  try {
    const ids = await startTracing(fixture);
    await fixture.proc.stdin.close(); // arms the throw; the next getppid event throws
    const status = await fixture.status();
    assert(status.code !== 0, `exit code ${status.code}`);
    assert(fixture.stderr.includes("handler failed on purpose"), fixture.stderr);
    assert(!/^stopped/m.test(fixture.stdout), fixture.stdout);
    await assertReleased(ids, "after the handler threw");
  } finally {
    await fixture.dispose();
    await stop(load);
  }
});

Deno.test("SIGKILL of the runner leaves nothing in the kernel", async () => {
  const load = getppidLoop();
  const fixture = new Fixture("wait");
  try {
    const ids = await startTracing(fixture);
    fixture.proc.kill("SIGKILL");
    const status = await fixture.status();
    assertEquals(status.signal, "SIGKILL");
    await assertReleased(ids, "after SIGKILL");
  } finally {
    await fixture.dispose();
    await stop(load);
  }
});

// In-process: the DSL used directly by this test process.

Deno.test("exit() from a handler ends run() with reason 'exit' and frees everything", async () => {
  const before = ownedIds(Deno.pid);
  let during: { ids: Ids; kernel: ReturnType<typeof kernelObjects> } | undefined;
  syscall.on("getppid:entry", () => {
    during ??= { ids: ownedIds(Deno.pid), kernel: kernelObjects() };
    exit();
  });
  const summary = await run({
    command: ["perl", "-e", "while (1) { syscall(110); select(undef, undef, undef, 0.01) }"],
  });
  assertEquals(summary.reason, "exit");
  assert(summary.events >= 1);
  assert(during, "no event was handled");
  const created = minus(during.ids, before);
  const { progs, maps } = assertListed(created, during.kernel);
  assertEquals(progs, ["sys_getppid", "tsp_follow", "tsp_unfollow"]);
  assertEquals(maps, ["counters", "events", "pids", "scratch"]);
  await assertReleased(created, "after exit()");
  assertEquals(minus(ownedIds(Deno.pid), before), emptyIds());
});

Deno.test("a handler that throws makes run() reject with its error and frees everything", async () => {
  const before = ownedIds(Deno.pid);
  const load = getppidLoop();
  const failure = new Error("handler failed on purpose");
  let during: { ids: Ids; kernel: ReturnType<typeof kernelObjects> } | undefined;
  try {
    syscall.on("getppid:return", () => {
      during ??= { ids: ownedIds(Deno.pid), kernel: kernelObjects() };
      throw failure;
    });
    tracepoint("sched:sched_process_exec").on(() => {});
    await rejects(run({ pid: load.pid }), (e) => e === failure);
  } finally {
    await stop(load);
  }
  assert(during, "no event was handled");
  const created = minus(during.ids, before);
  const { progs, maps } = assertListed(created, during.kernel);
  // The return's handler reads nothing of its event: no entry program, no state map.
  assertEquals(progs, ["syr_getppid", "tp_sched_proces"]);
  assertEquals(maps, ["counters", "events", "pids", "scratch"]);
  await assertReleased(created, "after the handler threw");
  assertEquals(minus(ownedIds(Deno.pid), before), emptyIds());
  assertEquals(session().size, 0, "the next probes start a new session");
});

Deno.test("run() with a duration ends with reason 'duration'", async () => {
  const before = ownedIds(Deno.pid);
  syscall.on("getppid:entry", () => {});
  const summary = await run({ duration: "300ms" });
  assertEquals(summary.reason, "duration");
  assertEquals(Object.keys(summary.byProbe), ["syscall:getppid:entry"]);
  assertEquals(minus(ownedIds(Deno.pid), before), emptyIds());
});

Deno.test("run() with no probes rejects with 'Nothing to trace', a usage error", async () => {
  assertEquals(session().size, 0);
  await rejects(run(), (e) => e instanceof ArgumentError && /^Nothing to trace/.test(e.message));
});

/** Asserts `e` is a single-line error. */
function oneLine(e: unknown): Error {
  assert(e instanceof Error, String(e));
  assert(!e.message.includes("\n"), `not one line: ${JSON.stringify(e.message)}`);
  return e;
}

Deno.test("a misspelled syscall fails run() with one line suggesting the right name", async () => {
  const before = ownedIds(Deno.pid);
  syscall.on("opnat:entry" as "openat:entry", () => {});
  await rejects(run({ duration: "1s" }), (e) => {
    assert(e instanceof ProbeNotFoundError, String(e));
    oneLine(e);
    assert(e.message.includes("openat"), e.message);
    assert(e.suggestions.includes("openat"), e.suggestions.join(", "));
    return true;
  });
  // The ring buffer and maps made before compiling are gone again.
  assertEquals(minus(ownedIds(Deno.pid), before), emptyIds());
  assertEquals(session().size, 0);
});

Deno.test("a misspelled tracepoint fails run() with one line suggesting the right name", async () => {
  const before = ownedIds(Deno.pid);
  // The name is looked up when the session compiles, not when tracepoint() is called.
  const probe = tracepoint("block:block_rq_isue");
  probe.on(() => {});
  await rejects(run({ duration: "1s" }), (e) => {
    assert(e instanceof ProbeNotFoundError, String(e));
    oneLine(e);
    assertEquals(e.kind, "tracepoint");
    assertEquals(e.probe, "block:block_rq_isue");
    assert(e.message.includes("block:block_rq_issue"), e.message);
    assertEquals(e.suggestions[0], "block:block_rq_issue");
    return true;
  });
  assertEquals(minus(ownedIds(Deno.pid), before), emptyIds());
  assertEquals(session().size, 0);
});

Deno.test("a syscall probe side other than entry/return is a one-line TypeError", () => {
  throws(() => syscall.on("openat:entri" as "openat:entry", () => {}), (e) => {
    assert(e instanceof TypeError, String(e));
    oneLine(e);
    assert(/entry/.test(e.message) && /return/.test(e.message), e.message);
    assert(e.message.includes("openat:entri"), e.message);
    return true;
  });
  assertEquals(session().size, 0, "nothing was added");
});
