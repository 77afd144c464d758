/**
 * io:start and io:done on NFS, against a loopback NFSv3 server (tests/fixtures/nfs.ts) and the
 * client's own counts of its requests (/proc/self/mountstats).
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { B, io, type IoDoneEvent, type IoStartEvent, run } from "../../mod.ts";
import { kernelTest } from "../fixtures/kernel.ts";
import { withNfs } from "../fixtures/nfs.ts";

type Seen = Pick<IoStartEvent, "buf" | "dev" | "file" | "comm"> & { latencyNs?: number };

/** The NFS mount's device name as the io provider gives it: "nfs" and the minor number. */
function statName(mountPoint: string): string {
  const dev = Deno.statSync(mountPoint).dev;
  // The userspace dev_t: minor in bits 0-7 and 20-31, major in bits 8-19.
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return `nfs${minor}`;
}

/** Traces io:start and io:done on the mount while `command` runs. */
async function trace(mountPoint: string, command: string): Promise<[Seen[], Seen[]]> {
  const starts: Seen[] = [];
  const dones: Seen[] = [];
  const name = statName(mountPoint);
  const keep = (e: IoStartEvent | IoDoneEvent) => ({
    buf: e.buf,
    dev: e.dev,
    file: e.file,
    comm: e.comm,
    latencyNs: "latencyNs" in e ? e.latencyNs : undefined,
  });
  io.on("start").where((e, p) => e.dev.dev_statname === p.name, { name })
    .on((e) => starts.push(keep(e)));
  io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name })
    .on((e) => dones.push(keep(e)));
  const summary = await run({ command: ["sh", "-c", command] });
  equal(summary.commandExitCode, 0, `${command} failed`);
  return [starts, dones];
}

const bytesByFile = (events: Seen[], flag: number) => {
  const out: Record<string, number> = {};
  for (const e of events.filter((e) => e.buf.b_flags & flag)) {
    out[e.file.fi_name] = (out[e.file.fi_name] ?? 0) + e.buf.b_bcount;
  }
  return out;
};

kernelTest(
  ["nfs"],
  "NFS: io:start and io:done for every READ and WRITE the client sent, bytes per file as written and read, none for metadata",
  async () => {
    await withNfs(async (nfs) => {
      const sizes = { "a.bin": 1024 * 1024 + 64 * 1024, "b.bin": 256 * 1024 };
      const m = nfs.mountPoint;
      const [writes, writesDone] = await trace(
        m,
        Object.entries(sizes).map(([f, n]) =>
          `dd if=/dev/urandom of=${m}/${f} bs=${n} count=1 conv=fsync status=none`
        ).join(" && "),
      );
      const writeOps = nfs.ops();
      for (const [f, n] of Object.entries(sizes)) {
        equal(Deno.statSync(`${nfs.exported}/${f}`).size, n, `the server has all of ${f}`);
      }
      equal(bytesByFile(writes, B.B_WRITE), sizes, "bytes written per file");
      equal(writes.length, writeOps.WRITE, "one io:start per WRITE the client sent");
      ok(writes.every((e) => e.buf.b_flags & B.B_WRITE && !(e.buf.b_flags & B.B_READ)));
      ok(writes.every((e) => e.buf.b_flags & B.B_PAGEIO && e.buf.b_flags & B.B_ASYNC));
      equal(writesDone.length, writes.length, "an io:done for every WRITE");
      for (const d of writesDone) {
        ok(d.latencyNs !== undefined && d.latencyNs > 0, `latency ${d.latencyNs}`);
        equal([d.buf.b_error, d.buf.b_resid, d.buf.b_flags & B.B_ERROR], [0, 0, 0]);
        equal(d.comm, "dd", "a done names the thread that started the request");
      }
      for (const e of [...writes, ...writesDone]) {
        equal(e.dev.dev_name, "nfs");
        equal(e.dev.dev_pathname, nfs.source);
        equal(e.dev.dev_major, 0);
        equal(e.file.fi_mount, m);
        equal(e.file.fi_pathname, `${m}/${e.file.fi_name}`);
        ok(/^nfs/.test(e.file.fi_fs), e.file.fi_fs);
      }

      // A tree the client has never seen, made on the server's side: listing it is metadata.
      for (let d = 0; d < 20; d++) {
        Deno.mkdirSync(`${nfs.exported}/tree/d${d}`, { recursive: true });
        for (let f = 0; f < 10; f++) {
          Deno.writeTextFileSync(`${nfs.exported}/tree/d${d}/f${f}`, "x");
        }
      }
      await nfs.remount();
      const [reads, readsDone] = await trace(
        m,
        `cat ${m}/a.bin ${m}/b.bin > /dev/null && ls -lR ${m}/tree > /dev/null`,
      );
      const readOps = nfs.ops();
      ok((readOps.READDIRPLUS ?? 0) + (readOps.READDIR ?? 0) > 0, "ls -R sent directory reads");
      equal(bytesByFile(reads, B.B_READ), sizes, "bytes read per file, and nothing for the tree");
      equal(reads.length, readOps.READ, "one io:start per READ the client sent");
      equal(readsDone.length, reads.length, "an io:done for every READ");
      for (const d of readsDone) {
        ok(d.latencyNs !== undefined && d.latencyNs > 0, `latency ${d.latencyNs}`);
        equal([d.buf.b_error, d.buf.b_resid], [0, 0]);
        ok(d.buf.b_flags & B.B_READ);
      }
    });
  },
);

kernelTest(
  ["nfs"],
  "NFS: a WRITE the server refuses (the export became read-only) is io:done with B_ERROR and EROFS",
  async () => {
    await withNfs(async (nfs) => {
      const m = nfs.mountPoint;
      Deno.writeTextFileSync(`${nfs.exported}/f`, "");
      const dones: IoDoneEvent["buf"][] = [];
      io.on("done").where((e, p) => e.dev.dev_statname === p.name, { name: statName(m) })
        .on((e) => dones.push(e.buf));
      // Opened while writable; the data goes out on close, after the export turned read-only.
      const file = await Deno.open(`${m}/f`, { write: true });
      await nfs.reexport(true);
      const summary = await run({
        command: [
          "sh",
          "-c",
          `dd if=/dev/zero of=${m}/f bs=64k count=1 conv=notrunc,fsync status=none; true`,
        ],
      });
      file.close();
      equal(summary.commandExitCode, 0);
      const failed = dones.filter((b) => b.b_flags & B.B_ERROR);
      ok(failed.length > 0, `no failed done among ${dones.length}`);
      for (const b of failed) {
        equal(b.b_error, 30, "EROFS");
        ok(b.b_flags & B.B_WRITE);
        equal(b.b_resid, b.b_bcount, "a refused WRITE moved nothing");
      }
    });
  },
);
