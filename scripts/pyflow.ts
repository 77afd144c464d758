/**
 * pyflow: Python function calls counted per function, from the interpreter's own USDT probes
 * (`python:function__return`, behind a semaphore the kernel sets while traced), in the kernel
 * by file and function. Debian 12's Python 3.11 fires `function__entry` for few frames, but
 * `function__return` for every return: each call is counted once, as it returns (a generator
 * counts once per value it yields).
 *
 *   tools/run scripts/pyflow.ts --demo                   a built-in Python workload
 *   tools/run scripts/pyflow.ts -p 1234 -d 10s --top 20
 *   tools/run scripts/pyflow.ts --python /usr/bin/python3.11 -c 'python3 app.py'
 *
 * JSON (--format json|ndjson): a `table` record named `functions`, its rows the text's lines
 * (file, function, calls; most calls first), its summary total (calls), distinct (functions)
 * and lost (calls not counted: the map was full).
 */
import { printable, usdt } from "../mod.ts";
import { recipe } from "../recipe.ts";

await recipe({
  name: "pyflow",
  description: "Python function calls per function, from python:function__return (USDT).",
  examples: [
    "pyflow --demo                  a built-in Python workload",
    "pyflow -p 1234 -d 10s          one Python process for 10 seconds",
  ],
  options: {
    python: {
      type: "string",
      default: "/usr/bin/python3",
      help: "the Python interpreter whose probes to use",
    },
    top: { type: "number", default: 20, min: 1, integer: true, help: "functions shown" },
  },
  // Debian's interpreter by path: a `python3` earlier in PATH (pyenv) may be another build.
  demo: "/usr/bin/python3 -c 'import json; [json.dumps({\"i\": i}) for i in range(100)]'",
  setup(o) {
    const python = Deno.realPathSync(o.python);
    const calls = usdt.on(`${python}:python:function__return`, undefined, { strings: [0, 1] })
      .count((e) => [e.str0, e.str1], { title: "calls", size: 65536 });
    return () => {
      const data = calls.read()!;
      const rows = data.rows.map((r) => ({
        file: String(r.key[0]),
        function: String(r.key[1]),
        calls: (r.value as { value: number }).value,
      })).sort((a, b) => b.calls - a.calls);
      if (o.records) {
        const total = rows.reduce((n, r) => n + r.calls, 0);
        o.records.table("functions", rows.slice(0, o.top), {
          total,
          distinct: rows.length,
          lost: data.lost,
        });
        return;
      }
      console.log(`${"CALLS".padStart(8)}  FUNCTION (FILE)`);
      for (const r of rows.slice(0, o.top)) {
        console.log(
          `${String(r.calls).padStart(8)}  ${printable(r.function)} (${printable(r.file)})`,
        );
      }
    };
  },
  run: () => ({ printAggregations: false }),
});
