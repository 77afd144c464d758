/**
 * scripts/profile.ts: folded stacks whose counts add up to the samples taken, and a flame
 * graph SVG that names the function a known program spins in.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, recipe } from "../fixtures/subprocess.ts";
import { withSpinner } from "../fixtures/spinner.ts";

Deno.test("profile --folded: one line per stack, counts summing to the samples; --svg names the hot function", async () => {
  await withSpinner(async (spin) => {
    const svg = await Deno.makeTempFile({ suffix: ".svg" });
    try {
      const r = await recipe("profile", "--folded", "--svg", svg, "-c", `${spin} 2`);
      equal(r.code, 0, r.stderr);
      const samples = Number(/profile: (\d+) samples/.exec(r.stderr)?.[1]);
      const folded = lines(r.stdout);
      ok(folded.length > 0);
      let sum = 0;
      for (const line of folded) {
        const m = /^(\S(?:.*\S)?) (\d+)$/.exec(line);
        ok(m, `not folded: ${line}`);
        ok(!m[1].split(";").some((f) => f === ""), `an empty frame: ${line}`);
        sum += Number(m[2]);
      }
      equal(sum, samples, "the folded counts are the samples taken");
      ok(samples >= 100, `${samples} samples in 2 s at 99 Hz`);
      // comm first, then main ... tsp_leaf, root to leaf.
      ok(folded.some((l) => /^spin;.*main[^;]*;tsp_a[^;]*;tsp_b[^;]*;tsp_leaf/.test(l)), r.stdout);
      const text = await Deno.readTextFile(svg);
      ok(text.startsWith("<?xml") && text.trimEnd().endsWith("</svg>"));
      ok(text.includes("tsp_leaf"), "the flame graph names the hot function");
      // Well-formed enough for a browser: every <g> closed.
      equal(text.match(/<g /g)?.length, text.match(/<\/g>/g)?.length);
    } finally {
      await Deno.remove(svg);
    }
  });
});

Deno.test("profile --help lists its options; a bad frequency, or --folded with JSON, is one line, exit 2", async () => {
  const help = await recipe("profile", "--help");
  equal(help.code, 0);
  for (const o of ["--frequency", "--stacks", "--folded", "--svg", "--top"]) {
    ok(help.stdout.includes(o), o);
  }
  for (const args of [["-F", "0"], ["--folded", "--format", "json"]]) {
    const bad = await recipe("profile", ...args);
    equal(bad.code, 2);
    equal(lines(bad.stderr).length, 1, bad.stderr);
  }
});
