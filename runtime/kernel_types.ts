/**
 * The TypeScript argument types of the running kernel's tracepoints and system calls, read from
 * their tracefs format files with the decoding rules the providers use, so a handler's parameter
 * type says what it receives on this kernel. Kernels differ (`block_rq_issue`'s `rwbs` is 8
 * bytes on 6.1 and 10 on 6.18, fields come and go), so types from another kernel can check and
 * then read wrong: `probe types` writes them for a user's scripts (cli/types.ts), and
 * tools/gen_types.ts writes the repository's small baseline with them.
 *
 * @module
 */
import { listTracepointsSync, readFormatSync, type TracepointField } from "../system/tracefs.ts";
import type { FieldDecoding } from "./codegen/record.ts";
import { fixedDecoding } from "./providers/tracepoint.ts";
import { argDecoding, isStringArg } from "./providers/syscall.ts";

/** Some of a kernel's probe types, and the kernel they were read from. */
export interface KernelTypes {
  /** The kernel release (`uname -r`). */
  release: string;
  /** The architecture, as Deno names it ("x86_64", "aarch64"). */
  arch: string;
  /** Each system call's arguments as a TypeScript object type, by name ("openat"), sorted. */
  syscalls: Map<string, string>;
  /** Each tracepoint's fields as a TypeScript object type, by "category:name", sorted. */
  tracepoints: Map<string, string>;
}

/** Which probes to type: tests on tracepoint names ("block:block_rq_issue") and syscall names. */
export interface TypeSelection {
  tracepoint(name: string): boolean;
  syscall(name: string): boolean;
}

const EVERYTHING: TypeSelection = { tracepoint: () => true, syscall: () => true };

const SYSCALL_ENTRY = "sys_enter_";
/** Where a syscall's arguments start in its format (after the common fields and __syscall_nr). */
const ARGS_OFFSET = 16;
const MAX_ARGS = 6;

function tsType(d: FieldDecoding): string {
  switch (d.type) {
    case "int":
      return "number";
    case "latency":
      return "number | undefined";
    case "pointer":
      return "bigint";
    case "string":
      return "string";
    case "bytes":
    case "buffer":
      return "Uint8Array";
    case "int_array":
      return "number[]";
  }
}

/** A property name, quoted when it is not an identifier. */
function key(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

function objectType(members: string[]): string {
  return members.length ? `{ ${members.join("; ")} }` : "Record<string, never>";
}

/** A tracepoint's own fields (not the common ones), as the tracepoint provider decodes them. */
function tracepointType(fields: TracepointField[]): string {
  return objectType(
    fields.filter((f) => !f.common).flatMap((f) => {
      if (f.kind === "data_loc_string" && !f.relLoc) return [`${key(f.name)}: string`];
      const d = fixedDecoding(f);
      return d ? [`${key(f.name)}: ${tsType(d)}`] : [];
    }),
  );
}

/** A syscall's arguments from its sys_enter format, as the syscall provider decodes them. */
function syscallType(fields: TracepointField[]): string {
  const args = fields.filter((f) => !f.common && f.offset >= ARGS_OFFSET).slice(0, MAX_ARGS);
  return objectType(
    args.map((f) => `${key(f.name)}: ${isStringArg(f) ? "string" : tsType(argDecoding(f))}`),
  );
}

/**
 * Reads the types of the running kernel's tracepoints and syscalls that `select` asks for (all
 * by default). Only the formats of selected probes are read.
 */
export function kernelTypes(select: TypeSelection = EVERYTHING): KernelTypes {
  const syscalls = new Map<string, string>();
  const tracepoints = new Map<string, string>();
  for (const { category, name } of listTracepointsSync()) {
    const full = `${category}:${name}`;
    const syscall = category === "syscalls" && name.startsWith(SYSCALL_ENTRY)
      ? name.slice(SYSCALL_ENTRY.length)
      : undefined;
    const asTracepoint = select.tracepoint(full);
    const asSyscall = syscall !== undefined && select.syscall(syscall);
    if (!asTracepoint && !asSyscall) continue;
    const { fields } = readFormatSync(category, name);
    if (asTracepoint) tracepoints.set(full, tracepointType(fields));
    if (asSyscall) syscalls.set(syscall, syscallType(fields));
  }
  return {
    release: Deno.osRelease(),
    arch: Deno.build.arch,
    syscalls: sorted(syscalls),
    tracepoints: sorted(tracepoints),
  };
}

function sorted(types: Map<string, string>): Map<string, string> {
  return new Map([...types].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** Interface members, each with a JSDoc line from `doc` when given (deno doc --lint asks one). */
function members(
  types: Map<string, string>,
  indent: string,
  doc?: (name: string) => string,
): string {
  return [...types].map(([name, type]) =>
    (doc ? `${indent}/** ${doc(name)} */\n` : "") + `${indent}${key(name)}: ${type};`
  ).join("\n");
}

/** The first line of every generated file: the kernel it describes, as `uname -r` and arch. */
export function kernelLine(t: KernelTypes): string {
  return `Linux ${t.release} (${t.arch})`;
}

/**
 * The repository's baseline module: interfaces `BaselineSyscallArgs` and
 * `BaselineTracepointArgs`, under a header that names the kernel release they were read from.
 */
export function baselineModule(t: KernelTypes, generator: string): string {
  return `// Generated by ${generator} from ${kernelLine(t)}'s tracefs format files; do not edit.
// Only the tracepoints and syscalls this repository's code, README and recipes name: others
// are typed loosely. Other kernels differ: \`probe types\` writes the running kernel's types,
// which take precedence over these (see README, "Types of your kernel").

/** The baseline's system call arguments, by name, as on ${kernelLine(t)}. */
export interface BaselineSyscallArgs {
${members(t.syscalls, "  ", (name) => `The arguments of ${name}(2).`)}
}

/** The baseline's tracepoint fields, by "category:name", as on ${kernelLine(t)}. */
export interface BaselineTracepointArgs {
${members(t.tracepoints, "  ", (name) => `The fields of tracepoint ${name}.`)}
}
`;
}

/**
 * A declaration file that adds a kernel's types to tsprobe's `KernelSyscallArgs` and
 * `KernelTracepointArgs` by module augmentation of `specifier`, the module a script imports
 * tsprobe from (a relative path, a URL, `jsr:` name): once a script imports the file (or a
 * deno.json lists it in `compilerOptions.types`), these types take precedence over the
 * baseline's.
 */
export function augmentationModule(t: KernelTypes, specifier: string): string {
  const spec = JSON.stringify(specifier);
  return `// Generated by \`probe types\` from ${kernelLine(t)}'s tracefs format files; do not edit.
// ${t.syscalls.size} syscalls and ${t.tracepoints.size} tracepoints, typed for tsprobe at ${spec}.
// Regenerate on the kernel your scripts trace: probe types [PATTERN...] [-o FILE]
import type {} from ${spec};

declare module ${spec} {
  /** System call arguments on ${kernelLine(t)}. */
  interface KernelSyscallArgs {
${members(t.syscalls, "    ")}
  }

  /** Tracepoint fields on ${kernelLine(t)}. */
  interface KernelTracepointArgs {
${members(t.tracepoints, "    ")}
  }
}
`;
}
