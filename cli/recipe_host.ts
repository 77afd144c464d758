/**
 * What `probe run` loads before a recipe (Deno's `--preload`): the recipe ends with probe (see
 * `followParent`), leaves probe out of what it traces as it leaves itself out, says its usage
 * errors in one line (exit 2) even when a plain script leaves them uncaught, and with `--explain` (`TSPROBE_EXPLAIN`) its `run()` prints what would be
 * compiled and loaded, loads nothing, and ends the recipe.
 *
 * @module
 */
import { setHostPids, setRunHook } from "../runtime/host.ts";
import { isUsageError } from "../runtime/usage.ts";
import { EXPLAIN_ENV, followParent, PARENT_ENV } from "./recipe_child.ts";

if (!followParent()) {
  console.error("probe: not run: the probe that started this recipe has exited");
  Deno.exit(1);
}
setHostPids([Number(Deno.env.get(PARENT_ENV))].filter((pid) => pid > 0));
if (Deno.env.get(EXPLAIN_ENV)) {
  setRunHook(async (session, options) => {
    console.log(await session.explain(options));
    Deno.exit(0);
  });
}

// A script that is not a recipe() leaves its errors uncaught: its usage errors (a lambda, a
// probe, a field) are still one line and exit 2, as probe's own.
globalThis.addEventListener("unhandledrejection", (event) => {
  if (!isUsageError(event.reason)) return;
  event.preventDefault();
  console.error(`probe: ${(event.reason as Error).message} (see probe --help)`);
  Deno.exit(2);
});
