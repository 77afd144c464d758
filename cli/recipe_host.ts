/**
 * What `probe run` loads before a recipe (Deno's `--preload`): the recipe ends with probe (see
 * `followParent`), and with `--explain` (`TSPROBE_EXPLAIN`) its `run()` prints what would be
 * compiled and loaded, loads nothing, and ends the recipe.
 *
 * @module
 */
import { setRunHook } from "../runtime/host.ts";
import { EXPLAIN_ENV, followParent } from "./recipe_child.ts";

if (!followParent()) {
  console.error("probe: not run: the probe that started this recipe has exited");
  Deno.exit(1);
}
if (Deno.env.get(EXPLAIN_ENV)) {
  setRunHook(async (session, options) => {
    console.log(await session.explain(options));
    Deno.exit(0);
  });
}
