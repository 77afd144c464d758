/**
 * kprobe and kretprobe: exact counts and return values where the kernel has kprobes (the 6.1
 * VM), a one-line error naming the kernel option and tracepoints where it has none (6.18).
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { kprobe, kretprobe, run } from "../../mod.ts";
import { listProbes } from "../../runtime/listing.ts";
import { kernelHas, kernelTest } from "../fixtures/kernel.ts";

const N = 300;
/** The kernel function behind getppid(2) on this architecture. */
const GETPPID = Deno.build.arch === "x86_64" ? "__x64_sys_getppid" : "__arm64_sys_getppid";

kernelTest(
  ["kprobes"],
  "kprobe counts exactly a command's N getppid calls in the kernel; kretprobe returns its parent",
  async () => {
    const counted = kprobe.on(GETPPID).count();
    const returned: bigint[] = [];
    kretprobe.on(GETPPID, (e) => returned.push(e.retval));
    const summary = await run({
      command: ["perl", "-e", `getppid() for 1..${N}`],
      printAggregations: false,
    });
    equal(summary.commandExitCode, 0);
    equal(counted.read()?.rows.map((r) => r.value), [{ kind: "count", value: N }]);
    equal(returned.length, N);
    // The command's parent is this process: the session started it.
    ok(returned.every((r) => r === BigInt(Deno.pid)), `${returned.slice(0, 3)}`);
  },
);

Deno.test("kprobes where the kernel has none: one line naming CONFIG_KPROBES and tracepoints to use", async () => {
  if (kernelHas("kprobes")) {
    // This kernel has them: they are listed, and an unknown function is refused in one line.
    ok(listProbes(`kprobe:${GETPPID}`).length === 1);
    kprobe.on("vfs_raed", () => {});
    await rejects(
      run({ command: ["true"] }),
      /Unknown kernel function 'vfs_raed'; did you mean vfs_read/,
    );
    return;
  }
  kprobe.on("vfs_read", () => {});
  await rejects(
    run({ command: ["true"] }),
    (e: Error) =>
      /kprobe:vfs_read is unavailable .*CONFIG_KPROBES is not set.*use a tracepoint instead/
        .test(e.message) && !e.message.includes("\n"),
  );
  equal(listProbes("kprobe:*"), [], "no kprobes listed where there are none");
});
