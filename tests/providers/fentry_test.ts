/**
 * fentry and fexit: arguments typed by BTF and return values where the kernel runs tracing
 * programs (the 6.1 VM), a one-line error where it refuses them (6.18 answers EPERM).
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { fentry, fexit, run } from "../../mod.ts";
import { kernelHas, kernelTest } from "../fixtures/kernel.ts";

const N = 300;
const GETPPID = Deno.build.arch === "x86_64" ? "__x64_sys_getppid" : "__arm64_sys_getppid";

kernelTest(
  ["fentry"],
  "fentry: vfs_read's size_t count by its BTF name, exactly N times; fexit: getppid's return",
  async () => {
    const counts: Array<number | bigint> = [];
    fentry.on("vfs_read").where((e) => e.comm === "dd" && e.args.count === 12345)
      .on((e) => counts.push(e.args.count));
    const returned: Array<number | bigint> = [];
    fexit.on(GETPPID).where((e) => e.comm === "perl").on((e) => returned.push(e.retval));
    const summary = await run({
      command: [
        "sh",
        "-c",
        `dd if=/dev/zero of=/dev/null bs=12345 count=${N} status=none && ` +
        `perl -e 'getppid() for 1..${N}'`,
      ],
    });
    equal(summary.commandExitCode, 0);
    equal(counts.length, N);
    ok(counts.every((c) => c === 12345), "size_t decoded as a number");
    equal(returned.length, N);
    // perl's parent is the shell the session started.
    ok(new Set(returned).size === 1 && Number(returned[0]) > 1, `${returned.slice(0, 3)}`);
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
