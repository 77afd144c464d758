/**
 * iotop: the processes and files that do the most block I/O, by bytes, like BCC's biotop.
 * Bytes and I/O counts are summed in the kernel at io:start, keyed by process and by file;
 * only the sums reach JavaScript, once at the end or, with -i, each interval (then emptied).
 *
 *   deno run -A scripts/iotop.ts --demo                 a built-in workload
 *   deno run -A scripts/iotop.ts -a -i 1s --top 5       every process, the top 5 each second
 *   deno run -A scripts/iotop.ts -a -d 30s --disk vda   every process's I/O on vda for 30 s
 *
 * What is counted: each I/O as the device sees it (io:start: per request on request-based
 * devices, per bio on bio-based ones), its `b_bcount` bytes as a read (B_READ), a write
 * (B_WRITE) or other (flushes, discards: neither), in the kernel. The process is io:start's
 * current task, the one that issued the I/O to the device: the reader of a read, the writer of
 * a direct write, but a writeback kworker for buffered writes (the page cache hides who
 * dirtied them) and sometimes the scheduler's dispatcher (kblockd) for I/O it held back. The
 * file is io:start's `fi_pathname` (`<none>` for metadata and raw devices, `<unknown>` where a
 * file exists but cannot be named), with its disk, so raw I/O on two disks stays apart.
 *
 * JSON (`--json`, `--format ndjson`): records of the `table` type named `processes`, rows `{ pid,
 * comm, ios, read_bytes, write_bytes, other_bytes, bytes }`, and `files`, rows `{ disk, file,
 * ios, read_bytes, write_bytes, other_bytes, bytes }` (with -i a pair per interval, then one of
 * the rest), each the top N by `bytes` (all three kinds), largest first; each one's summary
 * `{ lost }` counts the updates the kernel could not make because its map was full.
 *
 * @module
 */
import {
  type AggregationData,
  B,
  type DevInfo,
  intervalHeader,
  io,
  printable,
  type Stream,
} from "../mod.ts";
import { recipe, UsageError } from "../recipe.ts";

/** The bits the sums are split by: a read, a write, or neither. */
const RW = B.B_READ | B.B_WRITE;

/**
 * The demo: dd writes 4 MiB directly in 64 KiB blocks, dd reads 1 MiB of it back directly in
 * 4 KiB blocks, cat reads all of it through the page cache (readahead); a file under /var/tmp
 * unlinked as soon as it is open, so that it is gone even if the run is cut short.
 */
const DEMO = `f=$(mktemp /var/tmp/iotop.XXXXXX) && exec 3<>"$f" && rm -f "$f" && ` +
  `dd if=/dev/zero of=/dev/fd/3 bs=64k count=64 oflag=direct status=none && ` +
  `dd if=/dev/fd/3 of=/dev/null bs=4k count=256 iflag=direct status=none && ` +
  `cat /dev/fd/3 > /dev/null`;

/** Bytes and I/O of one process or file. */
interface Totals {
  ios: number;
  read_bytes: number;
  write_bytes: number;
  other_bytes: number;
  bytes: number;
}

/** Adds up the rows of a stats aggregation keyed by [...who, b_flags & RW] per `who`. */
function totals(data: AggregationData | undefined): Map<string, { key: unknown[] } & Totals> {
  const out = new Map<string, { key: unknown[] } & Totals>();
  for (const row of data?.rows ?? []) {
    if (row.value.kind !== "stats") continue;
    const who = row.key.slice(0, -1);
    const id = JSON.stringify(who);
    const t = out.get(id) ??
      out.set(id, { key: who, ios: 0, read_bytes: 0, write_bytes: 0, other_bytes: 0, bytes: 0 })
        .get(id)!;
    const { count, sum } = row.value.value;
    const rw = Number(row.key.at(-1));
    t.ios += count;
    t.bytes += sum;
    if (rw & B.B_READ) t.read_bytes += sum;
    else if (rw & B.B_WRITE) t.write_bytes += sum;
    else t.other_bytes += sum;
  }
  return out;
}

/** The `n` largest by bytes, largest first (ties: most I/O first). */
function top<T extends Totals>(xs: Iterable<T>, n: number): T[] {
  return [...xs].sort((a, b) => b.bytes - a.bytes || b.ios - a.ios).slice(0, n);
}

const kib = (bytes: number) => (bytes / 1024).toFixed(bytes % 1024 ? 1 : 0);

/** Prints one interval's (or the whole run's) tables: set up with the probes. */
let intervalReport: ((data: AggregationData[]) => void) | undefined;

await recipe({
  name: "iotop",
  description: "Top processes and files by block I/O bytes, summed in the kernel at io:start;\n" +
    "once at the end, or each interval with -i.",
  examples: [
    "iotop.ts --demo                        trace a built-in workload",
    "iotop.ts -a -i 1s --top 5              every process, the top 5 each second",
    "iotop.ts -a -d 30s --disk vda          every process's I/O on vda for 30 s",
  ],
  options: {
    top: {
      type: "number",
      default: 10,
      min: 1,
      help: "how many processes and files to show, most bytes first",
    },
    disk: { type: "string", help: "only this disk or partition (loop0, vda1)" },
  },
  demo: DEMO,
  setup(o) {
    if (!Number.isInteger(o.top)) throw new UsageError(`--top '${o.top}' is not a whole number`);
    const disk = o.disk?.replace(/^\/dev\//, "");
    try {
      if (disk !== undefined) Deno.statSync(`/sys/class/block/${disk}`);
    } catch {
      throw new UsageError(`--disk '${o.disk}' is not a block device`);
    }
    const onDisk = <E extends { dev: DevInfo }>(s: Stream<E>) =>
      disk === undefined ? s : s.where((e, p) => e.dev.dev_statname === p.disk, { disk });
    const starts = onDisk(io.on("start"));
    const clear = o.interval !== undefined;
    const params = { rw: RW };
    // stats keeps count and sum in one map: I/O and bytes per key.
    const byProcess = starts.stats((e) => e.buf.b_bcount, {
      by: (e, p) => [e.pid, e.comm, e.buf.b_flags & (p.rw as number)],
      params,
      clear,
      title: "bytes by process",
    });
    const byFile = starts.stats((e) => e.buf.b_bcount, {
      by: (e, p) => [e.dev.dev_statname, e.file.fi_pathname, e.buf.b_flags & (p.rw as number)],
      params,
      clear,
      title: "bytes by file",
    });
    const report = (procData?: AggregationData, fileData?: AggregationData) => {
      const processes = top(totals(procData).values(), o.top)
        .map(({ key, ...t }) => ({ pid: key[0] as number, comm: key[1] as string, ...t }));
      const files = top(totals(fileData).values(), o.top)
        .map(({ key, ...t }) => ({ disk: key[0] as string, file: key[1] as string, ...t }));
      if (o.records) {
        o.records.table("processes", processes, { lost: procData?.lost ?? 0 });
        o.records.table("files", files, { lost: fileData?.lost ?? 0 });
        return;
      }
      const lost = (procData?.lost ?? 0) + (fileData?.lost ?? 0);
      const cols = (t: Totals) =>
        `${String(t.ios).padStart(7)} ${kib(t.read_bytes).padStart(10)} ` +
        `${kib(t.write_bytes).padStart(10)} ${kib(t.other_bytes).padStart(9)}`;
      const head = `${"IOS".padStart(7)} ${"READ_KB".padStart(10)} ${"WRITE_KB".padStart(10)} ` +
        `${"OTHER_KB".padStart(9)}`;
      console.log(`${"PID".padStart(7)} ${"COMM".padEnd(16)} ${head}`);
      for (const p of processes) {
        console.log(`${String(p.pid).padStart(7)} ${printable(p.comm).padEnd(16)} ${cols(p)}`);
      }
      console.log(`\n${"DISK".padEnd(8)} ${head} FILE`);
      for (const f of files) {
        console.log(`${printable(f.disk).padEnd(8)} ${cols(f)} ${printable(f.file)}`);
      }
      if (lost > 0) console.log(`iotop: ${lost} updates lost: more keys than the maps hold`);
    };
    intervalReport = (data) => {
      if (!o.records) console.log(intervalHeader());
      report(
        data.find((d) => d.name === byProcess.name),
        data.find((d) => d.name === byFile.name),
      );
      if (!o.records) console.log();
    };
    return () => report(byProcess.read(), byFile.read());
  },
  run: () => ({ onInterval: (data) => intervalReport?.(data) }),
});
