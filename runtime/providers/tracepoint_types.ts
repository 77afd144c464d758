/**
 * The field types of tracepoints, by "category:name", as `tracepoint(NAME)` handlers see them in
 * `e.args`: the running kernel's where a script brought in the file `probe types` writes, else
 * the repository's baseline (baseline_types.ts, which names the kernel it was read from). The
 * DSL types any other name loosely (`Record<string, unknown>`).
 *
 * @module
 */
import type { BaselineTracepointArgs } from "./baseline_types.ts";

/**
 * Tracepoint fields of the kernel a script traces: empty here, and filled by module augmentation
 * from the declaration file `probe types` writes (`declare module "…/mod.ts" { interface
 * KernelTracepointArgs { … } }`). An interface of its own, not {@link TracepointArgs}: a kernel
 * whose fields differ from the baseline's would make merged declarations conflict.
 */
// deno-lint-ignore no-empty-interface
export interface KernelTracepointArgs {}

/**
 * The fields of each tracepoint, by "category:name": {@link KernelTracepointArgs} where
 * `probe types` wrote them, else the baseline's.
 */
export interface TracepointArgs
  extends Omit<BaselineTracepointArgs, keyof KernelTracepointArgs>, KernelTracepointArgs {}
