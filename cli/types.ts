/**
 * `probe types [PATTERN...]`: writes the running kernel's tracepoint and syscall types as a
 * declaration file that adds them to tsprobe's (module augmentation of `KernelSyscallArgs` and
 * `KernelTracepointArgs`), so a script type-checks against the kernel it will trace rather than
 * against the repository's baseline.
 *
 * @module
 */
import { basename, dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ArgumentError } from "../runtime/arguments.ts";
import { globMatcher } from "../runtime/listing.ts";
import { augmentationModule, kernelLine, kernelTypes } from "../runtime/kernel_types.ts";

/** The file `probe types` writes when not told where. */
export const DEFAULT_TYPES_FILE = "kernel_types.d.ts";

/** Where tsprobe's public module is, which the declaration file augments. */
const MOD = new URL("../mod.ts", import.meta.url);

/** How `probe types` was asked to run. */
export interface TypesOptions {
  /** The file to write (default {@link DEFAULT_TYPES_FILE}). */
  output?: string;
  /** How scripts import tsprobe (default: this tsprobe's mod.ts, relative to the file). */
  module?: string;
}

/**
 * A test on probe names from globs as `probe -l` takes them: a glob without ":" matches
 * anywhere in a name. A tracepoint matches as "CATEGORY:NAME" or "tracepoint:CATEGORY:NAME", a
 * syscall as "NAME", "NAME:entry", "NAME:return" or with "syscall:" before them.
 */
function selection(patterns: string[]) {
  const globs = patterns.map((p) => ({
    pattern: p,
    match: globMatcher(p.includes(":") ? p : `*${p}*`),
    used: false,
  }));
  const test = (names: string[]) => {
    let any = false;
    for (const g of globs) {
      if (names.some(g.match)) any = g.used = true;
    }
    return any;
  };
  return {
    tracepoint: (name: string) => globs.length === 0 || test([name, `tracepoint:${name}`]),
    syscall: (name: string) =>
      globs.length === 0 ||
      test([name, `${name}:entry`, `${name}:return`].flatMap((n) => [n, `syscall:${n}`])),
    unused: () => globs.filter((g) => !g.used).map((g) => g.pattern),
  };
}

/**
 * The module specifier of tsprobe as the file at `output` names it: a relative path from its
 * directory when tsprobe is a local checkout, else the URL it was loaded from.
 */
function moduleFrom(output: string): string {
  if (MOD.protocol !== "file:") return MOD.href;
  const path = relative(dirname(resolve(output)), fileURLToPath(MOD));
  return path.startsWith(".") ? path : `./${path}`;
}

/**
 * Writes the declaration file for the probes `patterns` match (all when none) and returns what
 * it wrote, in a line. A pattern that matches nothing is an {@link ArgumentError}.
 */
export function writeKernelTypes(patterns: string[], options: TypesOptions = {}): string {
  const output = options.output ?? DEFAULT_TYPES_FILE;
  const select = selection(patterns);
  const types = kernelTypes(select);
  const unused = select.unused();
  if (unused.length) {
    throw new ArgumentError(`no tracepoint or syscall matches '${unused.join("', '")}'`);
  }
  const specifier = options.module ?? moduleFrom(output);
  Deno.writeTextFileSync(output, augmentationModule(types, specifier));
  return `${output}: ${types.syscalls.size} syscalls and ${types.tracepoints.size} tracepoints ` +
    `of ${kernelLine(types)} for tsprobe at ${specifier}; a script in its directory uses them ` +
    `with: import type {} from "./${basename(output)}";`;
}
