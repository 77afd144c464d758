/**
 * Probes that differ between kernels: a probe whose tracepoint this kernel lacks degrades to a
 * one-line note when it is optional, and is a one-line error naming the kernel when it is not;
 * aio:uring finds its submit tracepoint under either of its names (6.1 and 6.18 differ).
 *
 * Needs root and libbpf.
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { aio, explain, run, session, Stream } from "../../mod.ts";
import { firstTracepointFormat } from "../../runtime/providers/tracepoint.ts";
import { type ProbeRequest, SiteUnavailableError } from "../../runtime/providers/provider.ts";

/** A probe on a tracepoint no kernel has, as a provider asks for one renamed across versions. */
function missingProbe(optional: boolean): Stream<{ pid: number }> {
  const request: ProbeRequest = {
    name: "test:missing",
    key: "test:missing",
    optional,
    sites: () => {
      if (!firstTracepointFormat("sched", ["sched_no_such_event", "sched_nor_this"])) {
        throw new SiteUnavailableError("test:missing", "it needs sched:sched_no_such_event");
      }
      throw new Error("unreachable: the tracepoint exists");
    },
  };
  return new Stream(session, { kind: "probe", request, predicates: [] });
}

Deno.test("an optional probe the kernel lacks is left out with a one-line note", async () => {
  const counted = missingProbe(true).count();
  const seen: number[] = [];
  missingProbe(true).on((e) => seen.push(e.pid));
  const text = await explain();
  ok(/^note: test:missing is unavailable on this kernel \(.+\): it needs sched:/m.test(text), text);
  const summary = await run({ command: ["true"], printAggregations: false });
  equal(summary.reason, "command");
  equal(summary.notes.length, 1);
  ok(!summary.notes[0].includes("\n"), "one line");
  ok(summary.notes[0].includes(Deno.osRelease()), "names the kernel");
  equal(seen, []);
  equal(counted.read(), undefined, "no data: nothing was traced");
});

Deno.test("a required probe the kernel lacks is a one-line error naming the kernel", async () => {
  missingProbe(false).count();
  await rejects(
    run({ command: ["true"] }),
    (e) =>
      e instanceof SiteUnavailableError && e.message.includes(Deno.osRelease()) &&
      !e.message.includes("\n"),
  );
  equal(session().programs.length, 0, "nothing was loaded");
});

Deno.test("aio:uring attaches on this kernel under its submit tracepoint's name here", async () => {
  const submit = firstTracepointFormat("io_uring", ["io_uring_submit_req", "io_uring_submit_sqe"]);
  ok(submit, "this kernel has an io_uring submit tracepoint");
  aio.on("uring").count();
  const text = await explain();
  ok(!text.includes("note:"), text);
  const summary = await run({ command: ["true"], printAggregations: false });
  equal(summary.notes, []);
});
