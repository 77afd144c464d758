import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { run, syscall } from "../../mod.ts";

Deno.test("syscall openat:entry sees exactly the N openat calls a child made, with filenames and pid", async () => {
  const n = 50;
  const prefix = `/tmp/tsprobe-openat-${crypto.randomUUID()}-`;
  const seen: { pid: number; comm: string; filename: string; dfd: number }[] = [];
  syscall.on("openat:entry", (e) => {
    if (e.args.filename.startsWith(prefix)) {
      seen.push({ pid: e.pid, comm: e.comm, filename: e.args.filename, dfd: e.args.dfd });
    }
  });
  const script = `open(my $f, "<", "${prefix}$_") for 1..${n}`;
  const summary = await run({ command: ["perl", "-e", script] });
  equal(summary.reason, "command");
  equal(seen.length, n);
  seen.forEach((s, i) => {
    equal(s.filename, `${prefix}${i + 1}`);
    equal(s.pid, summary.commandPid);
    equal(s.comm, "perl");
    equal(s.dfd, -100); // AT_FDCWD, decoded with the sign of its C type
  });
});

Deno.test("syscall read:return gives ret, entry args and an in-kernel latency per thread", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, new Uint8Array(3000));
    const reads: { ret: number; fd: number; count: number; latency: number | undefined }[] = [];
    let opened = false;
    syscall.on("openat:return", (e) => {
      if (e.args.filename === path && e.ret >= 0) opened = true;
    });
    // dd moves its input to fd 0; its 1000-byte reads are the ones of this file.
    syscall.on("read:return", (e) => {
      if (opened && e.args.count === 1000) {
        reads.push({ ret: e.ret, fd: e.args.fd, count: e.args.count, latency: e.latencyNs });
      }
    });
    // dd reads 1000-byte blocks: 3 full reads and one returning 0 at end of file.
    const summary = await run({
      command: ["dd", `if=${path}`, "of=/dev/null", "bs=1000", "status=none"],
    });
    equal(summary.commandExitCode, 0);
    equal(reads.map((r) => r.ret), [1000, 1000, 1000, 0]);
    for (const r of reads) {
      equal(r.fd, 0);
      ok(r.latency !== undefined && r.latency > 0 && r.latency < 10e9, `latency ${r.latency}`);
    }
  } finally {
    await Deno.remove(path);
  }
});

/** Runs dd over a file of 3000 bytes in 1000-byte reads (and one returning 0). */
async function ddReads(): Promise<void> {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, new Uint8Array(3000));
    const summary = await run({
      command: ["dd", `if=${path}`, "of=/dev/null", "bs=1000", "status=none"],
    });
    equal(summary.commandExitCode, 0);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("a return reading only its latency: every call timed, from an entry saving only its time", async () => {
  const timed = syscall.on("read:return").where((e) => e.ret === 1000)
    .hist((e) => e.latencyNs!);
  await ddReads();
  const [row] = timed.read()!.rows;
  ok(row.value.kind === "hist");
  equal(row.value.count, 3);
  // Each in a bucket of a real time: above 0 ns, below 2^34 ns (17 s).
  const used = row.value.buckets.filter((b) => b.count > 0);
  ok(used.every((b) => b.low >= 1 && b.high! <= 2 ** 34), JSON.stringify(used));
});

Deno.test("a return reading only an argument gets it exactly, from an entry saving no time", async () => {
  const counts: number[] = [];
  syscall.on("read:return", (e) => {
    if (e.ret === 1000) counts.push(e.args.count);
  });
  await ddReads();
  equal(counts, [1000, 1000, 1000]);
});

Deno.test("returns of one syscall with different buffers each time every call: no entry serves two", async () => {
  // Three requests for read:return (no buffers, and two buffer sizes): each has its own return
  // program; one's taking the entry's saved time must not leave the others without it.
  const timed = [undefined, { buf: 8 }, { buf: 16 }].map((buffers) =>
    syscall.on("read:return", undefined, buffers && { buffers }).where((e) => e.ret === 1000)
      .hist((e) => e.latencyNs!)
  );
  await ddReads();
  for (const [i, stream] of timed.entries()) {
    const [row] = stream.read()?.rows ?? [];
    ok(row?.value.kind === "hist", `stream ${i}: ${JSON.stringify(row)}`);
    equal(row.value.count, 3, `stream ${i}`);
  }
});

Deno.test("a lone event reaches its handler while the run goes on: the reader polls", async () => {
  const started = performance.now();
  let arrived: number | undefined;
  syscall.on("getppid:entry", () => arrived ??= performance.now() - started);
  // One call, then 2 s of nothing: no wakeup comes, the reader's poll finds the event.
  const summary = await run({ command: ["perl", "-e", "getppid(); sleep 2"] });
  equal(summary.events, 1);
  ok(arrived !== undefined && arrived < 1500, `arrived after ${arrived} ms`);
});

Deno.test("under a flood, delivered + reported dropped == generated, exactly", async () => {
  const n = 2_000_000;
  let delivered = 0;
  let first = 0, last = 0;
  syscall.on("getppid:entry", (e) => {
    if (delivered++ === 0) first = e.timestampNs;
    last = e.timestampNs;
  });
  // A small ring buffer and a consumer that cannot keep up with a tight loop force drops.
  // Two generators in parallel (one per core) reach a rate one process cannot.
  const loop = `perl -e 'syscall(110) for 1..${n / 2}'`;
  const summary = await run({
    command: ["sh", "-c", `${loop} & ${loop}; wait`],
    comm: "perl", // the shell's own getppid calls are not part of the count
    ringBufferBytes: 1 << 12,
  });
  // The rate the child generated at, from kernel timestamps (reported, not asserted).
  const seconds = (last - first) / 1e9;
  console.log(
    `flood: ${n} generated at ${Math.round(n / seconds)} events/s, ` +
      `${delivered} delivered, ${summary.dropped} dropped`,
  );
  equal(summary.events, delivered);
  equal(delivered + summary.dropped, n);
  ok(summary.dropped > 0, "the flood should overrun a 4 KiB ring buffer");
});

Deno.test("syscall buffers: write:entry reads count bytes, read:return reads ret bytes", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "hello from tsprobe\n");
    const written: string[] = [];
    const read: string[] = [];
    const dec = new TextDecoder();
    // dd moves its input to fd 0 and its output to fd 1; it reads and writes 8-byte blocks.
    syscall.on("write:entry", (e) => {
      if (e.args.fd === 1 && e.args.count === 8) written.push(dec.decode(e.buffers.buf));
    }, { buffers: { buf: 4 } });
    syscall.on("read:return", (e) => {
      if (e.args.fd === 0 && e.args.count === 8) read.push(dec.decode(e.buffers.buf));
    }, { buffers: { buf: 64 } });
    const summary = await run({
      command: ["dd", `if=${path}`, "of=/dev/null", "bs=8", "count=3", "status=none"],
    });
    equal(summary.commandExitCode, 0);
    equal(read, ["hello fr", "om tspro", "be\n"]); // as many bytes as each read returned
    equal(written, ["hell", "om t"]); // the third write has count 3; each capped at 4 bytes
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("syscall buffers: a non-pointer argument gets a one-line error naming the pointers", async () => {
  syscall.on("write:entry", () => {}, { buffers: { count: 8 } });
  await rejects(run({ duration: "10ms" }), /no pointer argument 'count'.*pointer arguments: buf/);
});

Deno.test("command tracing follows descendants; comm filters in the kernel", async () => {
  const prefix = `/tmp/tsprobe-follow-${crypto.randomUUID()}-`;
  const byComm = new Map<string, number>();
  syscall.on("openat:entry", (e) => {
    if (e.args.filename.startsWith(prefix)) byComm.set(e.comm, (byComm.get(e.comm) ?? 0) + 1);
  });
  // The shell opens one file itself and forks cat twice (once from a subshell, a grandchild);
  // none of those processes exist when tracing starts.
  const script = `{ true <${prefix}s; } 2>/dev/null; cat ${prefix}a 2>/dev/null; ` +
    `(cat ${prefix}b 2>/dev/null); true`;
  await run({ command: ["sh", "-c", script] });
  equal(byComm.get("cat"), 2);
  equal(byComm.get("sh"), 1);

  const seen = new Set<string>();
  syscall.on("openat:entry", (e) => {
    if (e.args.filename.startsWith(prefix)) seen.add(e.comm);
  });
  await run({ command: ["sh", "-c", script], comm: "cat" });
  equal([...seen], ["cat"]);
});
