/**
 * Stacks and CPU profiles: kernel stacks named through kallsyms, user stacks through the
 * process's mappings and its ELF symbols, checked on programs with known call chains.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { profile, run, tracepoint } from "../../mod.ts";
import { withSpinner } from "../fixtures/spinner.ts";

Deno.test("profile: a process spinning in a known function, its leaf frame and call chain named", async () => {
  await withSpinner(async (spin) => {
    const stacks: string[][] = [];
    profile({ hz: 99 }).on((e) => stacks.push(e.ustack));
    const hot = profile({ hz: 99 }).count((e) => e.ustack);
    const summary = await run({ command: [spin, "2"], printAggregations: false });
    equal(summary.commandExitCode, 0);
    const user = stacks.filter((s) => s.length > 0);
    // 2 s at 99 Hz on the CPU it runs on: about 198 samples.
    ok(user.length >= 100, `${user.length} user samples`);
    const inLeaf = user.filter((s) => s[0].startsWith("tsp_leaf"));
    ok(inLeaf.length >= 0.9 * user.length, `${inLeaf.length} of ${user.length} in tsp_leaf`);
    // The call chain, leaf first: tsp_leaf <- tsp_b <- tsp_a <- main.
    const chain = inLeaf.find((s) => s.length >= 4)!;
    equal(chain.slice(0, 4).map((f) => f.replace(/\+\d+$/, "")), [
      "tsp_leaf",
      "tsp_b",
      "tsp_a",
      "main",
    ]);
    // Counted by stack in the kernel, the keys named when read.
    const top = hot.read()!.rows.sort((a, b) =>
      (b.value as { value: number }).value - (a.value as { value: number }).value
    )[0];
    ok(String(top.key[0]).includes("tsp_leaf"), "the hottest stack is in tsp_leaf");
  });
});

Deno.test("a fork's kernel stack contains kernel_clone, the function that implements it", async () => {
  const stacks: string[][] = [];
  tracepoint("sched:sched_process_fork").where((e) => e.comm === "perl")
    .on((e) => stacks.push(e.kstack));
  await run({ command: ["perl", "-e", "for (1..3) { fork() || exit 0; wait }"] });
  equal(stacks.length, 3);
  for (const s of stacks) {
    ok(s.some((f) => /^kernel_clone(\+\d+)?$/.test(f)), s.join(" | "));
    ok(s.some((f) => f.startsWith("entry_SYSCALL_64") || f.startsWith("el0_svc")), s.join(" | "));
  }
});
