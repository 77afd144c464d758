/**
 * fentry and fexit: arguments typed by BTF and return values where the kernel runs tracing
 * programs (the 6.1 VM), a one-line error where it refuses them (6.18 answers EPERM).
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { fentry, fexit, run } from "../../mod.ts";
import { kernelHas, kernelTest } from "../fixtures/kernel.ts";

const N = 300;

kernelTest(
  ["fentry"],
  "fentry: vfs_read's size_t count by its BTF name, exactly N times; fexit: its return value",
  async () => {
    const counts: Array<number | bigint> = [];
    fentry.on("vfs_read").where((e) => e.comm === "dd" && e.args.count === 12345)
      .on((e) => counts.push(e.args.count));
    const returned: Array<number | bigint> = [];
    fexit.on("vfs_read").where((e) => e.comm === "dd" && e.args.count === 12345)
      .on((e) => returned.push(e.retval));
    const summary = await run({
      command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=12345", `count=${N}`, "status=none"],
    });
    equal(summary.commandExitCode, 0);
    equal(counts.length, N);
    ok(counts.every((c) => c === 12345), "size_t decoded as a number");
    // Every read of /dev/zero returns all it was asked for: ssize_t 12345.
    equal(returned, Array(N).fill(12345));
  },
);

Deno.test("fentry where the kernel refuses tracing programs: one line naming kprobes and tracepoints", async () => {
  if (kernelHas("fentry")) {
    // This kernel runs them: an unknown function is refused in one line with close names.
    fentry.on("vfs_raed", () => {});
    await rejects(run({ command: ["true"] }), /no function 'vfs_raed'; did you mean vfs_read/);
    return;
  }
  fentry.on("vfs_read", () => {});
  await rejects(
    run({ command: ["true"] }),
    (e: Error) =>
      /fentry:vfs_read is unavailable .*refuses tracing programs.*kprobe\.on\("vfs_read"\).*tracepoint/
        .test(e.message) && !e.message.includes("\n"),
  );
});
