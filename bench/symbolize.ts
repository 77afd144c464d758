/**
 * Symbolizing user stacks: 10,000 distinct stacks of 8 frames each, addresses inside the
 * functions of libc as this process maps it, named through /proc/PID/maps and libc's ELF
 * symbols, from a cold cache (target: under one second, as the reach issue asks).
 *
 *   tools/run bench/symbolize.ts [STACKS]
 */
import { functionSymbols, resolveLibrary } from "../system/elf.ts";
import { rememberProcess, userFrame } from "../system/symbolize.ts";

const stacks = Number(Deno.args[0] ?? 10_000);
const FRAMES = 8;

// Where libc's text is mapped in this process: its r-x mapping and that mapping's file offset.
const libc = Deno.realPathSync(resolveLibrary("c"));
const maps = Deno.readTextFileSync("/proc/self/maps").split("\n");
const text = maps.map((l) => /^([0-9a-f]+)-[0-9a-f]+ r-xp ([0-9a-f]+) \S+ \d+\s+(\S+)$/.exec(l))
  .find((m) => m && Deno.realPathSync(m[3]) === libc);
if (!text) throw new Error(`libc (${libc}) is not mapped executable here`);
const start = BigInt(`0x${text[1]}`);
const offset = BigInt(`0x${text[2]}`);
const functions = functionSymbols(libc).filter((f) => f.size > 16n && f.offset >= offset);

// Distinct stacks: each frame a different function, at a different offset into it.
const addresses: bigint[][] = [];
for (let s = 0; s < stacks; s++) {
  addresses.push(Array.from({ length: FRAMES }, (_, i) => {
    const f = functions[(s * FRAMES + i) % functions.length];
    return start + (f.offset - offset) + BigInt((s + i) % Number(f.size));
  }));
}

const t0 = performance.now();
rememberProcess(Deno.pid);
let unknown = 0;
for (const stack of addresses) {
  for (const a of stack) if (userFrame(Deno.pid, a).startsWith("[unknown]")) unknown++;
}
const ms = performance.now() - t0;
console.log(
  `symbolize: ${stacks} distinct user stacks of ${FRAMES} frames in ${ms.toFixed(0)} ms ` +
    `(${unknown} frames unknown; target under 1000 ms)`,
);
