/**
 * syslat: the system calls that took the most time, overall or per process, with their count,
 * average and maximum, like BCC's `syscount -L`. Each `raw_syscalls:sys_enter` is kept in a
 * kernel map by thread until its `raw_syscalls:sys_exit` (a span), and the time between them
 * is aggregated in the kernel by syscall number (and process); only the totals reach
 * JavaScript. A syscall's time includes the time it blocked: `wait4` and `read` on a pipe
 * lead when processes wait.
 *
 *   tools/run scripts/syslat.ts --demo                   a built-in shell workload, traced
 *   tools/run scripts/syslat.ts -p 1234 -d 5s --top 20
 *   tools/run scripts/syslat.ts -a -i 1s --per-process
 *
 * JSON (--format json|ndjson): a `table` record named `syscalls`, one per interval with -i,
 * its rows as the text's lines (pid and comm with --per-process, nr, name, count, total_ns,
 * avg_ns, min_ns, max_ns), its summary count, total_ns, distinct, lost and, at the end, span
 * (the span's started, matched, unmatched, open and lost).
 */
import {
  type AggregationData,
  intervalHeader,
  printable,
  type RecordWriter,
  type RunSummary,
  span,
  syscallName,
  tracepoint,
} from "../mod.ts";
import { recipe } from "../recipe.ts";

const TITLE = "syscall latency (ns)";

/** One line of the report (and one row of the `syscalls` table in JSON); times in ns. */
interface Row {
  pid?: number;
  comm?: string;
  nr: number;
  name: string;
  count: number;
  total_ns: number;
  avg_ns: number;
  min_ns: number;
  max_ns: number;
}

function rows(data: AggregationData | undefined, perProcess: boolean): Row[] {
  return (data?.rows ?? []).flatMap(({ key, value }): Row[] => {
    if (value.kind !== "stats") return [];
    const nr = Number(key[perProcess ? 2 : 0]);
    const who = perProcess ? { pid: Number(key[0]), comm: String(key[1]) } : {};
    const s = value.value;
    return [{
      ...who,
      nr,
      name: syscallName(nr),
      count: s.count,
      total_ns: s.sum,
      avg_ns: s.count ? Math.round(s.sum / s.count) : 0,
      min_ns: s.min,
      max_ns: s.max,
    }];
  }).sort((a, b) => b.total_ns - a.total_ns || a.nr - b.nr || (a.pid ?? 0) - (b.pid ?? 0));
}

interface Report {
  top: number;
  perProcess: boolean;
  records: RecordWriter | undefined;
  interval: boolean;
}

const ms = (ns: number) => (ns / 1e6).toFixed(3);
const us = (ns: number) => (ns / 1e3).toFixed(1);

function report(o: Report, data: AggregationData | undefined, summary?: RunSummary): void {
  const all = rows(data, o.perProcess);
  const count = all.reduce((n, r) => n + r.count, 0);
  const total = all.reduce((n, r) => n + r.total_ns, 0);
  const top = all.slice(0, o.top);
  const lost = data?.lost ?? 0;
  if (lost > 0) {
    console.error(
      `syslat: ${lost} syscalls not counted: more than ${data!.capacity} keys; totals are low`,
    );
  }
  const sp = summary?.spans[0];
  if (o.records) {
    o.records.table("syscalls", top.map((r) => ({ ...r })), {
      count,
      total_ns: total,
      distinct: all.length,
      lost,
      ...(sp && {
        span: {
          started: sp.started,
          matched: sp.matched,
          unmatched: sp.unmatched,
          open: sp.open,
          lost: sp.lost,
        },
      }),
    });
    return;
  }
  if (o.interval) console.log(intervalHeader());
  const head = o.perProcess ? `${"PID".padStart(7)} ${"COMM".padEnd(16)} ` : "";
  console.log(
    `${head}${"SYSCALL".padEnd(24)} ${"COUNT".padStart(9)} ${"TOTAL ms".padStart(12)} ` +
      `${"AVG us".padStart(10)} ${"MAX us".padStart(10)}`,
  );
  for (const r of top) {
    const who = o.perProcess
      ? `${String(r.pid).padStart(7)} ${printable(r.comm!).padEnd(16)} `
      : "";
    console.log(
      `${who}${r.name.padEnd(24)} ${String(r.count).padStart(9)} ${ms(r.total_ns).padStart(12)} ` +
        `${us(r.avg_ns).padStart(10)} ${us(r.max_ns).padStart(10)}`,
    );
  }
  const kinds = o.perProcess ? "process and syscall pairs" : "different syscalls";
  const shown = all.length > top.length ? `, top ${top.length} shown` : "";
  console.log(`${count} syscalls, ${ms(total)} ms in all, ${all.length} ${kinds}${shown}`);
  // Calls still inside the kernel at the end (exit_group never returns) are not counted.
  if (sp?.open) console.log(`${sp.open} syscalls had not returned when tracing stopped`);
  console.log();
}

await recipe({
  name: "syslat",
  description:
    "Top system calls by total latency (sys_enter to sys_exit per thread, timed in the kernel), " +
    "with count, average and max.",
  examples: [
    "syslat --demo                    trace a built-in shell loop",
    "syslat -c 'ls -R /etc' --top 5    one command and its children",
    "syslat -a -d 5s --per-process     every process for 5 seconds, per process",
  ],
  options: {
    top: {
      type: "number",
      default: 10,
      min: 1,
      integer: true,
      help: "show the N with the most time",
    },
    "per-process": { type: "boolean", help: "aggregate per process (pid, comm) and syscall" },
  },
  demo: "for i in $(seq 200); do cat /etc/hostname > /dev/null; done",
  setup(o) {
    const r: Report = {
      top: o.top,
      perProcess: o["per-process"],
      records: o.records,
      interval: o.interval !== undefined,
    };
    const calls = span(tracepoint("raw_syscalls:sys_enter"), tracepoint("raw_syscalls:sys_exit"), {
      key: (e) => e.tid,
      carry: { id: (e) => e.args.id },
      name: "syscall",
    });
    const options = { title: TITLE, clear: r.interval };
    const stats = r.perProcess
      ? calls.stats((e) => e.latencyNs, { ...options, by: (e) => [e.pid, e.comm, e.start.id] })
      : calls.stats((e) => e.latencyNs, { ...options, by: (e) => e.start.id });
    return (summary) => report(r, stats.read(), summary);
  },
  run: (o) => ({
    // Each interval's totals arrive here, already emptied in the kernel (clear).
    onInterval: (aggregations) =>
      report(
        { top: o.top, perProcess: o["per-process"], records: o.records, interval: true },
        aggregations.find((a) => a.name === TITLE),
      ),
  }),
});
