import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { run, syscall, type SyscallReturnEvent } from "../../mod.ts";

type ReadEvent = SyscallReturnEvent<{ fd: number; buf: bigint; count: number }>;
type Predicate = (e: ReadEvent, p: Record<string, unknown>) => unknown;

/** Each supported operator and builtin, with the params it needs. */
const PREDICATES: Array<[Predicate, Record<string, unknown>?]> = [
  [(e) => e.ret + 1 > 20],
  [(e) => e.ret - 5 < 3],
  [(e) => e.ret * 3 === 36],
  [(e) => e.ret / 4 === 2], // integer division in the kernel; 8..11 / 4 is 2 only for 8 in JS
  [(e) => Math.trunc(e.ret / 4) === 2],
  [(e) => e.ret % 7 === 3],
  [(e) => (e.ret & 4) !== 0],
  [(e) => (e.ret | 1) === 9],
  [(e) => (e.ret ^ 6) < 4],
  [(e) => e.ret << 3 >= 200],
  [(e) => e.ret >> 2 === 3],
  [(e) => e.ret >>> 1 === 10],
  [(e) => ~e.ret === -13],
  [(e) => -e.ret <= -30],
  [(e) => e.ret != 5],
  [(e) => e.ret == 5],
  [(e) => e.ret >= 38 || e.ret <= 2],
  [(e) => e.ret > 10 && e.ret < 15],
  [(e) => !(e.ret > 3)],
  [(e) => (e.ret > 20 ? e.ret - 20 : 0) > 5],
  [(e) => e.comm === "perl" && e.ret === 7],
  [(e) => e.comm !== "perl"],
  [(e) => e.comm.startsWith("pe") && e.ret < 4],
  [(e) => ["perl", "dash"].includes(e.comm) && [3, 5, 7].includes(e.ret)],
  [(e) => Math.min(e.ret, 10) === 10],
  [(e) => Math.max(e.ret, 30) === 30],
  [(e) => Math.abs(e.ret - 20) < 3],
  [(e) => e.args.buf !== 0n && e.args.count === e.ret && e.ret > 35],
  [(e) => e.args.buf > 0x1000n && BigInt(e.ret) < 4n],
  [(e) => Number(e.ret) === 17],
  [(e, p) => e.ret > (p.limit as number), { limit: 33 }],
  [(e, p) => (p.names as string[]).includes(e.comm) && e.ret === (p.size as number), {
    names: ["perl"],
    size: 9,
  }],
  [(e) => e.pid === e.tid && e.latencyNs! >= 0 && e.ret === 11],
];

Deno.test("every operator in a predicate filters real events in the kernel exactly as JavaScript does", async () => {
  const sizes = Array.from({ length: 40 }, (_, i) => i + 1);
  const reads = syscall.on("read:return").where((e) => e.args.fd === 0 && e.ret > 0);
  const events: ReadEvent[] = [];
  reads.on((e) => events.push(e as unknown as ReadEvent));
  const counts = PREDICATES.map(([pred, params]) =>
    reads.where(pred as never, params).count(undefined, { title: pred.toString() })
  );
  const summary = await run({
    command: ["sh", "-c", `perl -e 'sysread(STDIN, $b, $_) for (${sizes.join(",")})' < /dev/zero`],
    printAggregations: false,
  });
  equal(summary.commandExitCode, 0);
  equal(events.map((e) => e.ret), sizes);
  PREDICATES.forEach(([pred, params], i) => {
    const js = events.filter((e) => pred(e, params ?? {})).length;
    const kernel = counts[i].read()!.rows[0]?.value;
    const n = kernel?.kind === "count" ? kernel.value : 0;
    // Integer division is the one place where the kernel (truncating) and JS differ.
    const expected = pred.toString().includes("e.ret / 4 === 2") ? 4 : js;
    equal(n, expected, pred.toString());
    ok(n > 0 && n < events.length || pred.toString().includes("!=="), `${pred} is selective`);
  });
});
