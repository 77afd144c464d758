import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import {
  haveFentry,
  haveLoop,
  havePmu,
  haveProgramType,
  requireFentry,
  requireKprobes,
  requireLoop,
  requireUprobes,
} from "../bpf/features.ts";
import { NotSupportedError } from "../bpf/errors.ts";

Deno.test("haveProgramType() finds the program types this runtime loads", () => {
  ok(haveProgramType("tracepoint"));
  ok(haveProgramType("raw_tracepoint"));
  ok(haveProgramType("perf_event"));
});

Deno.test("the loop helper and its callback load on every kernel of the matrix (5.17+)", () => {
  ok(haveLoop());
  requireLoop();
});

Deno.test("requireUprobes() passes: the uprobe PMU exists", () => {
  ok(havePmu("uprobe"));
  requireUprobes();
});

Deno.test("requireKprobes() agrees with the kprobe PMU and names the feature when missing", () => {
  if (havePmu("kprobe") && haveProgramType("kprobe")) {
    requireKprobes();
    return;
  }
  throws(
    () => requireKprobes(),
    (e) =>
      e instanceof NotSupportedError && e.feature === "kprobe" &&
      /kprobe is not supported by this kernel/.test(e.message),
  );
});

Deno.test("requireFentry() agrees with a real fentry load and says so when refused", () => {
  const have = haveFentry();
  equal(haveFentry(), have, "the answer is cached and stable");
  if (have) {
    requireFentry();
    return;
  }
  throws(
    () => requireFentry(),
    (e) =>
      e instanceof NotSupportedError && e.feature === "fentry" &&
      /^fentry is not supported by this kernel/.test(e.message),
  );
});
