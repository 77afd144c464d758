/**
 * syscount: the system calls made most often, overall or per process, like BCC's tool of that
 * name. Every `raw_syscalls:sys_enter` is counted in the kernel by syscall number (and by
 * process with --per-process); only the counts reach JavaScript, where numbers get their names.
 *
 *   tools/run scripts/syscount.ts --demo                 a built-in shell workload, traced
 *   tools/run scripts/syscount.ts -p 1234 -d 5s --top 20
 *   tools/run scripts/syscount.ts -a -i 1s --per-process
 */
import {
  type AggregationData,
  intervalHeader,
  type KeyPart,
  printable,
  type RecordWriter,
  syscallName,
  tracepoint,
} from "../mod.ts";
import { recipe } from "../recipe.ts";

const TITLE = "syscalls by count";

/** One line of the report (and one row of the `syscalls` table in JSON). */
interface Row {
  pid?: number;
  comm?: string;
  nr: number;
  name: string;
  count: number;
}

function rows(data: AggregationData | undefined, perProcess: boolean): Row[] {
  return (data?.rows ?? []).flatMap(({ key, value }): Row[] => {
    if (value.kind !== "count") return [];
    const nr = Number(key[perProcess ? 2 : 0]);
    const who = perProcess ? { pid: Number(key[0]), comm: String(key[1]) } : {};
    return [{ ...who, nr, name: syscallName(nr), count: value.value }];
  }).sort((a, b) => b.count - a.count || a.nr - b.nr || (a.pid ?? 0) - (b.pid ?? 0));
}

interface Report {
  top: number;
  perProcess: boolean;
  records: RecordWriter | undefined;
  interval: boolean;
}

function report(o: Report, data: AggregationData | undefined): void {
  const all = rows(data, o.perProcess);
  const total = all.reduce((n, r) => n + r.count, 0);
  const top = all.slice(0, o.top);
  const lost = data?.lost ?? 0;
  if (lost > 0) {
    console.error(
      `syscount: ${lost} syscalls not counted: more than ${data!.capacity} keys; counts are low`,
    );
  }
  if (o.records) {
    o.records.table("syscalls", top.map((r) => ({ ...r })), { total, distinct: all.length, lost });
    return;
  }
  if (o.interval) console.log(intervalHeader());
  const head = o.perProcess ? `${"PID".padStart(7)} ${"COMM".padEnd(16)} ` : "";
  console.log(`${head}${"SYSCALL".padEnd(24)} ${"COUNT".padStart(10)}`);
  for (const r of top) {
    const who = o.perProcess
      ? `${String(r.pid).padStart(7)} ${printable(r.comm!).padEnd(16)} `
      : "";
    console.log(`${who}${r.name.padEnd(24)} ${String(r.count).padStart(10)}`);
  }
  const kinds = o.perProcess ? "process and syscall pairs" : "different syscalls";
  const shown = all.length > top.length ? `, top ${top.length} shown` : "";
  console.log(`${total} syscalls, ${all.length} ${kinds}${shown}\n`);
}

await recipe({
  name: "syscount",
  description: "Top system calls by count, counted in the kernel from raw_syscalls:sys_enter.",
  examples: [
    "syscount --demo                    trace a built-in shell loop",
    "syscount -c 'ls -R /etc' --top 5    one command and its children",
    "syscount -a -d 5s --per-process     every process for 5 seconds, per process",
  ],
  options: {
    top: { type: "number", default: 10, min: 1, integer: true, help: "show the N most frequent" },
    "per-process": { type: "boolean", help: "count per process (pid, comm) and syscall" },
  },
  demo: "for i in $(seq 200); do cat /etc/hostname > /dev/null; done",
  setup(o) {
    const r: Report = {
      top: o.top,
      perProcess: o["per-process"],
      records: o.records,
      interval: o.interval !== undefined,
    };
    const enter = tracepoint("raw_syscalls:sys_enter");
    const options = {
      title: TITLE,
      clear: r.interval,
      // As --metrics serves it: tsprobe_syscalls_total{syscall="read"} (and pid, comm).
      metric: {
        name: "syscalls",
        help: "System calls entered (raw_syscalls:sys_enter)",
        labelValues: { syscall: (nr: KeyPart) => syscallName(Number(nr)) },
      },
    };
    const counts = r.perProcess
      ? enter.count((e) => ({ pid: e.pid, comm: e.comm, syscall: e.args.id }), options)
      : enter.count((e) => ({ syscall: e.args.id }), options);
    return () => report(r, counts.read());
  },
  run: (o) => ({
    // Each interval's counts arrive here, already emptied in the kernel (clear).
    onInterval: (aggregations) =>
      report(
        {
          top: o.top,
          perProcess: o["per-process"],
          records: o.records,
          interval: true,
        },
        aggregations.find((a) => a.name === TITLE),
      ),
  }),
});
