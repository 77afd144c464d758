/**
 * One-liners: `probe -e '<TypeScript>'` evaluates the code as a module with every provider and
 * aggregation of mod.ts in scope, then runs the session it set up.
 *
 * @module
 */
import { PROVIDERS } from "../runtime/providers/registry.ts";

/** The names a one-liner sees without importing them: every provider, and the DSL's helpers. */
export const IN_SCOPE: readonly string[] = [
  ...PROVIDERS.map((p) => p.name),
  "span",
  "exit",
  "session",
  "B",
];

/**
 * The one-liner as a module importing mod.ts, in a `data:` URL to import: no file is written,
 * so none can outlive the process however it ends (Deno.exit() in the code, SIGKILL). Its
 * `console` escapes the text it prints (see escaped_console.ts).
 */
export function oneLinerUrl(code: string): string {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const escaped = new URL("./escaped_console.ts", import.meta.url).href;
  const source = `import { ${IN_SCOPE.join(", ")} } from ${JSON.stringify(mod)};\n` +
    `import { escapedConsole as console } from ${JSON.stringify(escaped)};\n` +
    `void [${IN_SCOPE.join(", ")}, console];\n${code}\n`;
  const bytes = new TextEncoder().encode(source);
  return `data:application/typescript;base64,${
    btoa(Array.from(bytes, (c) => String.fromCharCode(c)).join(""))
  }`;
}

/** Most brackets a one-liner may nest: Deno aborted parsing 1000, not 600 (Linux 6.18, 2.9.6). */
export const MAX_NESTING = 256;

/** How deep `code`'s brackets nest, strings and comments counted too (an overestimate). */
export function nestingDepth(code: string): number {
  let depth = 0, max = 0;
  for (const ch of code) {
    if (ch === "(" || ch === "[" || ch === "{") max = Math.max(max, ++depth);
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
  }
  return max;
}
