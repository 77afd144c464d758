/**
 * Writes runtime/providers/syscall_numbers/ARCH.ts: the name of each system call number of one
 * architecture, for tools that see numbers only (`raw_syscalls:sys_enter` gives `id`). The
 * numbers are ABI, so the tables are committed and machines without the headers use them as
 * generated.
 *
 * - x86_64 from the kernel's UAPI header (`#define __NR_read 0`), or a kernel tree's
 *   arch/x86/entry/syscalls/syscall_64.tbl, e.g. for syscalls newer than the installed
 *   linux-libc-dev.
 * - aarch64 from asm-generic/unistd.h, which every architecture's linux-libc-dev installs:
 *   arm64's own header (before Linux 6.11) is that file under the `__ARCH_WANT_*` switches
 *   below, so the x86_64 machine that generates the tables needs no arm64 headers.
 *
 *   deno run -A tools/gen_syscall_numbers.ts [--arch x86_64|aarch64] [HEADER]
 *
 * @module
 */
import { parseArgs } from "node:util";

/**
 * What arch/arm64/include/uapi/asm/unistd.h (Linux 5.14 to 6.10) defines before it includes
 * asm-generic/unistd.h; Linux 6.11's generated header has the same numbers.
 */
export const ARM64_DEFINES: readonly string[] = [
  "__ARCH_WANT_RENAMEAT",
  "__ARCH_WANT_NEW_STAT",
  "__ARCH_WANT_SET_GET_RLIMIT",
  "__ARCH_WANT_TIME32_SYSCALLS",
  "__ARCH_WANT_SYS_CLONE3",
  "__ARCH_WANT_MEMFD_SECRET",
];

const SOURCES: Record<string, { header: string; defines?: readonly string[] }> = {
  x86_64: { header: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h" },
  aarch64: { header: "/usr/include/asm-generic/unistd.h", defines: ARM64_DEFINES },
};

/** Numbers and names from `#define __NR_name N` lines, or from a syscall_64.tbl. */
export function parseSyscallNumbers(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    const define = line.match(/^#define\s+__NR_(\w+)\s+(\d+)\s*$/);
    // syscall_64.tbl: "0  common  read  sys_read"; x32 entries are another ABI.
    const table = line.match(/^(\d+)\s+(common|64)\s+(\w+)/);
    const [name, nr] = define
      ? [define[1], Number(define[2])]
      : table
      ? [table[3], Number(table[1])]
      : [undefined, NaN];
    if (name === undefined) continue;
    add(names, nr, name);
  }
  return names;
}

function add(names: Map<number, string>, nr: number, name: string): void {
  const seen = names.get(nr);
  if (seen !== undefined && seen !== name) {
    throw new Error(`Syscall ${nr} is named both '${seen}' and '${name}'`);
  }
  names.set(nr, name);
}

/**
 * The numbers of a 64-bit architecture built on asm-generic/unistd.h with `defines` set: the
 * header's `#if`/`#ifdef` blocks are evaluated as the C preprocessor would (with
 * `__BITS_PER_LONG` 64 and no `__SYSCALL_COMPAT`), and `__NR3264_*` numbers take the names the
 * 64-bit ABI gives them (`#define __NR_fcntl __NR3264_fcntl`).
 */
export function parseGenericUnistd(
  text: string,
  defines: readonly string[],
): Map<number, string> {
  const macros = new Map<string, number>([["__BITS_PER_LONG", 64]]);
  for (const d of defines) macros.set(d, 1);
  const names = new Map<number, string>();
  // Each entry: this block is taken, and whether a branch of its #if was taken already.
  const blocks: { on: boolean; taken: boolean }[] = [];
  const active = () => blocks.every((b) => b.on);
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const [, directive, rest = ""] = line.match(/^\s*#\s*(\w+)\s*(.*?)\s*$/) ?? [];
    if (directive === "if" || directive === "ifdef" || directive === "ifndef") {
      const on = directive === "if"
        ? evaluate(rest, macros)
        : macros.has(rest.split(/\s/)[0]) === (directive === "ifdef");
      blocks.push({ on, taken: on });
    } else if (directive === "else") {
      const b = blocks.at(-1)!;
      b.on = !b.taken;
      b.taken = true;
    } else if (directive === "endif") {
      blocks.pop();
    } else if (directive === "undef" && active()) {
      macros.delete(rest);
    } else if (directive === "define" && active()) {
      const [, name, body = ""] = rest.match(/^(\w+)(?:\([^)]*\))?\s*(.*)$/) ?? [];
      if (name === undefined) continue;
      const value = body.replace(/\/\*.*?\*\//g, "").trim();
      const nr = /^\d+$/.test(value) ? Number(value) : macros.get(value);
      macros.set(name, nr ?? 1);
      const nrName = name.match(/^__NR_(\w+)$/)?.[1];
      if (nrName !== undefined && nrName !== "syscalls" && nr !== undefined) {
        add(names, nr, nrName);
      }
    }
  }
  return names;
}

/**
 * The value of a preprocessor condition: `defined(X)`, `defined X`, macros (0 when undefined,
 * as in C), integers, `== != ! && ||` and parentheses, which is all unistd.h uses.
 */
function evaluate(expression: string, macros: Map<string, number>): boolean {
  const tokens = expression.replace(/\/\*.*?\*\//g, "")
    .replace(
      /defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)/g,
      (_, a, b) => macros.has(a ?? b) ? "1" : "0",
    )
    .match(/\d+|\w+|==|!=|&&|\|\||[!()]/g) ?? [];
  let at = 0;
  const primary = (): number => {
    const t = tokens[at++];
    if (t === "!") return primary() ? 0 : 1;
    if (t === "(") {
      const v = or();
      at++; // ")"
      return v;
    }
    return /^\d+$/.test(t) ? Number(t) : macros.get(t) ?? 0;
  };
  const equality = (): number => {
    let v = primary();
    while (tokens[at] === "==" || tokens[at] === "!=") {
      const op = tokens[at++];
      const w = primary();
      v = (op === "==") === (v === w) ? 1 : 0;
    }
    return v;
  };
  const and = (): number => {
    let v = equality();
    while (tokens[at] === "&&") {
      at++;
      v = equality() && v ? 1 : 0;
    }
    return v;
  };
  const or = (): number => {
    let v = and();
    while (tokens[at] === "||") {
      at++;
      v = and() || v ? 1 : 0;
    }
    return v;
  };
  return or() !== 0;
}

/** The module text of one architecture's table. */
export function tableModule(arch: string, source: string, names: Map<number, string>): string {
  const rows = [...names].sort(([a], [b]) => a - b).map(([nr, name]) => `  ${nr}: "${name}",`);
  return `// Generated by tools/gen_syscall_numbers.ts from ${source}; do not edit.
// Regenerate: deno run -A tools/gen_syscall_numbers.ts --arch ${arch} [HEADER]
// Syscall numbers are ABI: they never change, newer kernels only add to them.

/** The name of each ${arch} system call, by number (\`raw_syscalls:sys_enter\`'s \`id\`). */
export const SYSCALLS: Readonly<Record<number, string>> = Object.freeze({
${rows.join("\n")}
});
`;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { arch: { type: "string", default: "x86_64" } },
  });
  const arch = values.arch!;
  const known = SOURCES[arch];
  if (!known) throw new Error(`No syscall source for '${arch}': one of ${Object.keys(SOURCES)}`);
  const source = positionals[0] ?? known.header;
  const text = Deno.readTextFileSync(source);
  const names = known.defines && source === known.header
    ? parseGenericUnistd(text, known.defines)
    : parseSyscallNumbers(text);
  if (names.size === 0) throw new Error(`No syscall numbers found in ${source}`);
  const out = new URL(`../runtime/providers/syscall_numbers/${arch}.ts`, import.meta.url);
  Deno.writeTextFileSync(out, tableModule(arch, source, names));
  console.log(`${arch}: ${names.size} syscalls, 0..${Math.max(...names.keys())}`);
}
