/**
 * What `probe run` loads before a recipe (Deno's `--preload`): the recipe ends with probe (see
 * `followParent`), leaves probe out of what it traces as it leaves itself out, and with `--explain` (`TSPROBE_EXPLAIN`) its `run()` prints what would be
 * compiled and loaded, loads nothing, and ends the recipe.
 *
 * @module
 */
import { setHostPids, setRunHook } from "../runtime/host.ts";
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
