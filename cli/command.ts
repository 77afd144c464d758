/**
 * A `-c` command checked before anything loads: `sh -c` always starts, so a misspelled
 * program would otherwise show only as the shell's "not found" and status 127 after tracing.
 *
 * @module
 */

/** Characters after which the first word is not simply a program to look up. */
const SHELL_SYNTAX = /[\s;&|<>()$`'"\\=*?[\]{}~#!]/;

/**
 * The program `command` (a shell command line) starts when it is not found in PATH nor a
 * shell builtin or function; undefined when it is, or when the first word is shell syntax
 * (a variable assignment, a subshell, a quote...), which only the shell can tell.
 */
export async function missingProgram(command: string): Promise<string | undefined> {
  const word = command.trimStart().split(/\s+/)[0] ?? "";
  if (word === "" || SHELL_SYNTAX.test(word)) return undefined;
  const found = await new Deno.Command("sh", {
    args: ["-c", 'command -v -- "$1" >/dev/null', "sh", word],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return found.success ? undefined : word;
}
