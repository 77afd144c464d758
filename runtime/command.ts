/**
 * A `-c` command checked before anything loads: `sh -c` always starts, so a misspelled
 * program would otherwise show only as the shell's "not found" and status 127 after tracing.
 *
 * @module
 */

import { executableProblem } from "./executable.ts";

/** Characters after which the first word is not simply a program to look up. */
const SHELL_SYNTAX = /[\s;&|<>()$`'"\\=*?[\]{}~#!]/;

/**
 * Why `command` (a shell command line) cannot start: its program is not found (in PATH, nor a
 * builtin or function), or a path that is not an executable file; undefined when it can, or
 * when the first word is shell syntax (an assignment, a subshell, a quote...), which only the
 * shell can tell.
 */
export async function programProblem(command: string): Promise<string | undefined> {
  const word = command.trimStart().split(/\s+/)[0] ?? "";
  if (word === "" || SHELL_SYNTAX.test(word)) return undefined;
  // sh's `command -v` takes any existing path; the kernel needs an executable file.
  const problem = executableProblem(word);
  if (problem === undefined || word.includes("/")) return problem;
  // Not in PATH, but maybe a shell builtin or function.
  const found = await new Deno.Command("sh", {
    args: ["-c", 'command -v -- "$1" >/dev/null', "sh", word],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return found.success ? undefined : problem;
}
