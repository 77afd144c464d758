/**
 * One-liners: `probe -e '<TypeScript>'` evaluates the code as a module with every provider and
 * aggregation of mod.ts in scope, then runs the session it set up.
 *
 * @module
 */
/**
 * The names a one-liner sees without importing them, each from the module that defines it:
 * every provider, and the DSL's helpers. A one-liner imports only the modules of the names its
 * code uses, so that it does not load every provider to start.
 */
export const SCOPE: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries({
    syscall: "dsl/syscall.ts",
    tracepoint: "dsl/tracepoint.ts",
    io: "dsl/io.ts",
    aio: "dsl/aio.ts",
    uprobe: "dsl/uprobe.ts",
    uretprobe: "dsl/uprobe.ts",
    kprobe: "dsl/kprobe.ts",
    kretprobe: "dsl/kprobe.ts",
    fentry: "dsl/fentry.ts",
    fexit: "dsl/fentry.ts",
    profile: "dsl/profile.ts",
    usdt: "dsl/usdt.ts",
    sched: "dsl/sched.ts",
    proc: "dsl/proc.ts",
    span: "stream.ts",
    exit: "dsl/global.ts",
    session: "dsl/global.ts",
    B: "providers/io/bufinfo.ts",
  }).map(([name, path]) => [name, new URL(`../runtime/${path}`, import.meta.url).href]),
);

/** The names a one-liner sees without importing them. */
export const IN_SCOPE: readonly string[] = Object.keys(SCOPE);

/**
 * Key namers (`count((e) => syscallName(e.args.id))`) and the module that registers each: the
 * compiler knows a namer once its module is loaded, which the providers a one-liner uses may
 * not do (the raw_syscalls tracepoint does not load the syscall table).
 */
export const NAMERS: Readonly<Record<string, string>> = {
  syscallName: new URL("../runtime/providers/syscall_numbers.ts", import.meta.url).href,
  uringOpName: new URL("../runtime/providers/aio/aio.ts", import.meta.url).href,
};

/** Whether `code` has `name` as a word (perhaps in a string or comment: an import too many). */
function names(code: string, name: string): boolean {
  return new RegExp(`(?<![\\w$])${name}(?![\\w$])`).test(code);
}

/**
 * The one-liner as a module importing what it uses of its scope, in a `data:` URL to import:
 * no file is written, so none can outlive the process however it ends (Deno.exit() in the
 * code, SIGKILL). Its `console` escapes the text it prints (see escaped_console.ts).
 */
export function oneLinerUrl(code: string): string {
  const escaped = new URL("./escaped_console.ts", import.meta.url).href;
  const used = IN_SCOPE.filter((name) => names(code, name));
  const imports = [
    ...used.map((name) => `import { ${name} } from ${JSON.stringify(SCOPE[name])};\n`),
    ...Object.entries(NAMERS).filter(([name]) => names(code, name))
      .map(([, url]) => `import ${JSON.stringify(url)};\n`),
  ];
  const source = `${imports.join("")}` +
    `import { escapedConsole as console } from ${JSON.stringify(escaped)};\n` +
    `void [${[...used, "console"].join(", ")}];\n${code}\n`;
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
