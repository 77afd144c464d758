import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import {
  haveFentry,
  haveLoop,
  haveProgramType,
  requireFentry,
  requireKprobes,
  requireLoop,
  requireUprobes,
} from "../../bpf/features.ts";
import { NotSupportedError } from "../../bpf/errors.ts";
import { KERNEL_FEATURES, kernelHas, MATRIX, matrixKernel } from "../fixtures/kernel.ts";

Deno.test("haveProgramType() finds the program types this runtime loads", () => {
  ok(haveProgramType("tracepoint"));
  ok(haveProgramType("raw_tracepoint"));
  ok(haveProgramType("perf_event"));
});

Deno.test("every feature probe answers what this matrix kernel must have", () => {
  const kernel = matrixKernel();
  if (Deno.env.get("CI") === "true") {
    ok(kernel, `CI runs on a matrix kernel, not ${Deno.osRelease()}`);
  }
  for (const f of Object.keys(KERNEL_FEATURES) as (keyof typeof KERNEL_FEATURES)[]) {
    // kernelHas() throws where the probe and the list disagree.
    if (kernel) equal(kernelHas(f), kernel.has[f], f);
  }
});

Deno.test("matrixKernel() finds each kernel of the matrix by its release, and no other", () => {
  equal(matrixKernel("6.1.0-57-amd64")?.has.kprobes, true);
  equal(matrixKernel("6.18.44-fc-v857")?.has.kprobes, false);
  equal(matrixKernel("5.15.0-1-generic"), undefined);
  for (const r of ["6.1.0-57-amd64", "6.18.44-fc-v857"]) {
    equal(MATRIX.filter((k) => k.release.test(r)).length, 1, r);
  }
});

Deno.test("the loop helper and its callback load (5.17+, every kernel of the matrix)", () => {
  equal(haveLoop(), kernelHas("loop"));
  requireLoop();
});

Deno.test("requireUprobes() passes: the uprobe PMU exists", () => {
  ok(kernelHas("uprobes"));
  requireUprobes();
});

Deno.test("requireKprobes() agrees with what the kernel has and names the feature when missing", () => {
  if (kernelHas("kprobes")) {
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

Deno.test("requireFentry() agrees with what the kernel has and says so when refused", () => {
  const have = kernelHas("fentry");
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
