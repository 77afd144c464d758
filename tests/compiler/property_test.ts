/**
 * Random well-typed expressions over the fields of one real event: each is compiled, loaded
 * and evaluated in the kernel (as a keyless `stats`, whose min and max are then the value),
 * and must equal the same lambda run in JavaScript on the event the kernel captured.
 */
import { deepStrictEqual as equal } from "node:assert/strict";
import { type Aggregation, run, syscall } from "../../mod.ts";

const EXPRESSIONS = 1200;
const PER_SESSION = 40;
const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 20261122);

/** Park-Miller: small, seedable, good enough to pick shapes. */
function random(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

interface Gen {
  src: string;
  /** Bound on the absolute value, so JavaScript numbers stay exact (< 2^53). */
  bound: number;
  bool: boolean;
}

const FIELDS: Gen[] = [
  { src: "e.ret", bound: 4096, bool: false },
  { src: "e.args.fd", bound: 2, bool: false },
  { src: "e.args.count", bound: 4096, bool: false },
  { src: "e.pid", bound: 2 ** 22, bool: false },
  { src: "e.tid", bound: 2 ** 22, bool: false },
  { src: "e.cpu", bound: 64, bool: false },
];

function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const small = () => Math.floor(rand() * 201) - 100;
  const nonZero = () => (small() || 7);
  // Bitwise operators are 32-bit in JavaScript and 64-bit in the kernel: masking to 20 bits
  // first gives both the same value for any integer.
  const masked = (g: Gen): Gen =>
    g.bound < 2 ** 20 && !g.bool ? g : { src: `(${g.src} & 0xfffff)`, bound: 0xfffff, bool: false };
  const int = (depth: number): Gen => {
    if (depth <= 0 || rand() < 0.2) {
      return rand() < 0.6 ? pick(FIELDS) : { src: `${small()}`, bound: 100, bool: false };
    }
    const a = int(depth - 1);
    const b = int(depth - 1);
    const c = nonZero();
    const choices: Array<() => Gen | undefined> = [
      () => ({ src: `(${a.src} + ${b.src})`, bound: a.bound + b.bound, bool: false }),
      () => ({ src: `(${a.src} - ${b.src})`, bound: a.bound + b.bound, bool: false }),
      () =>
        a.bound * b.bound < 2 ** 50
          ? { src: `(${a.src} * ${b.src})`, bound: a.bound * b.bound, bool: false }
          : undefined,
      () => ({ src: `Math.trunc(${a.src} / ${c})`, bound: a.bound, bool: false }),
      () => ({ src: `(${a.src} % ${c})`, bound: a.bound, bool: false }),
      // Divisors computed at run time, of either sign (0 replaced: JavaScript has no BPF rule).
      () => ({
        src: `Math.trunc(${a.src} / (${b.src} === 0 ? 7 : ${b.src}))`,
        bound: a.bound,
        bool: false,
      }),
      () => ({ src: `(${a.src} % (${b.src} === 0 ? -3 : ${b.src}))`, bound: a.bound, bool: false }),
      () => {
        const [x, y] = [masked(a), masked(b)];
        const op = pick(["&", "|", "^"]);
        return { src: `(${x.src} ${op} ${y.src})`, bound: 2 ** 20, bool: false };
      },
      () => {
        const x = masked(a);
        const k = Math.floor(rand() * 10);
        return { src: `(${x.src} << ${k})`, bound: 2 ** 30, bool: false };
      },
      () => {
        const x = masked(a);
        return { src: `(${x.src} >> ${Math.floor(rand() * 12)})`, bound: x.bound, bool: false };
      },
      // >>> reads its operand as unsigned 32-bit in JavaScript: give it a non-negative one.
      () => ({
        src: `((${a.src} & 0xfffff) >>> ${Math.floor(rand() * 12)})`,
        bound: 2 ** 20,
        bool: false,
      }),
      () => ({ src: `(~${masked(a).src})`, bound: 2 ** 20 + 1, bool: false }),
      () => ({ src: `(-(${a.src}))`, bound: a.bound, bool: false }),
      () => ({ src: `Math.abs(${a.src})`, bound: a.bound, bool: false }),
      () => ({
        src: `Math.${pick(["min", "max"])}(${a.src}, ${b.src})`,
        bound: Math.max(a.bound, b.bound),
        bool: false,
      }),
      () => {
        const t = bool(depth - 1);
        return {
          src: `(${t.src} ? ${a.src} : ${b.src})`,
          bound: Math.max(a.bound, b.bound),
          bool: false,
        };
      },
    ];
    for (;;) {
      const g = pick(choices)();
      if (g) return g;
    }
  };
  const bool = (depth: number): Gen => {
    const a = int(depth);
    const b = int(depth);
    const choices: Array<() => Gen> = [
      () => ({
        src: `(${a.src} ${pick(["<", "<=", ">", ">=", "===", "!=="])} ${b.src})`,
        bound: 1,
        bool: true,
      }),
      () => {
        const [x, y] = [bool(depth - 1), bool(depth - 1)];
        return { src: `(${x.src} ${pick(["&&", "||"])} ${y.src})`, bound: 1, bool: true };
      },
      () => ({ src: `!${bool(depth - 1).src}`, bound: 1, bool: true }),
      () => ({
        src: `(e.comm ${pick(["===", "!=="])} "${pick(["perl", "sh", "p"])}")`,
        bound: 1,
        bool: true,
      }),
      () => ({
        src: `e.comm.startsWith("${pick(["pe", "perl", "x", ""])}")`,
        bound: 1,
        bool: true,
      }),
      () => ({
        src: `[${[small(), small(), 37].join(", ")}].includes(${a.src})`,
        bound: 1,
        bool: true,
      }),
    ];
    return depth <= 0 ? choices[0]() : pick(choices)();
  };
  return () => (rand() < 0.75 ? int(4) : bool(3));
}

Deno.test(`${EXPRESSIONS} random expressions give the same value in the kernel as in JavaScript`, async () => {
  const next = generator(random(SEED));
  const sources = Array.from({ length: EXPRESSIONS }, () => next().src);
  for (let start = 0; start < sources.length; start += PER_SESSION) {
    const batch = sources.slice(start, start + PER_SESSION);
    // The event: one read of 37 bytes from /dev/zero on fd 0 by perl.
    const reads = syscall.on("read:return").where((e) =>
      e.args.fd === 0 && e.ret === 37 && e.comm === "perl"
    );
    let captured: unknown;
    reads.on((e) => captured = e);
    const lambdas = batch.map((src) => (0, eval)(`(e) => ${src}`) as (e: unknown) => unknown);
    const aggs: Aggregation[] = lambdas.map((fn, i) =>
      reads.stats(fn as never, { title: `expr ${start + i}` })
    );
    const summary = await run({
      command: ["sh", "-c", "perl -e 'sysread(STDIN, $b, 37)' < /dev/zero"],
      printAggregations: false,
    });
    equal(summary.commandExitCode, 0);
    equal(summary.events, 1, "exactly one event captured");
    lambdas.forEach((fn, i) => {
      const js = Number(fn(captured)) + 0; // no -0
      const row = aggs[i].read()!.rows[0]?.value;
      const stats = row?.kind === "stats" ? row.value : undefined;
      equal(
        stats && { count: stats.count, min: stats.min, max: stats.max },
        { count: 1, min: js, max: js },
        `seed ${SEED}, #${start + i}: ${batch[i]}`,
      );
    });
  }
});
