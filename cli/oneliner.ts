/**
 * One-liners: `probe -e '<TypeScript>'` evaluates the code as a module with every provider and
 * aggregation of mod.ts in scope, then runs the session it set up.
 *
 * @module
 */

/** The names a one-liner sees without importing them. */
export const IN_SCOPE = [
  "syscall",
  "tracepoint",
  "io",
  "aio",
  "span",
  "exit",
  "session",
  "B",
] as const;

/** Writes the one-liner as a module importing mod.ts; returns its path (remove it after). */
export async function oneLinerModule(code: string): Promise<string> {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const source = `import { ${IN_SCOPE.join(", ")} } from ${JSON.stringify(mod)};\n` +
    `void [${IN_SCOPE.join(", ")}];\n${code}\n`;
  const path = await Deno.makeTempFile({ prefix: "probe-e-", suffix: ".ts" });
  await Deno.writeTextFile(path, source);
  return path;
}
