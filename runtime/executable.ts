/**
 * Whether a program can be executed, asked before a session starts it: a command that cannot
 * start would otherwise show only as its shell's "not found" and status 127, after loading.
 *
 * @module
 */

/** Whether `path` is a file with an execute bit. */
function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Why `name` cannot be executed as `execvp` would look it up: a path (with a `/`) that is not
 * an executable file, or a name found in no directory of PATH; undefined when it can.
 */
export function executableProblem(name: string): string | undefined {
  if (name.includes("/")) {
    try {
      Deno.statSync(name);
    } catch {
      return `no such program '${name}'`;
    }
    return isExecutableFile(name) ? undefined : `'${name}' is not an executable file`;
  }
  const path = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  const found = path.split(":").some((dir) => isExecutableFile(`${dir || "."}/${name}`));
  return found ? undefined : `no such program '${name}' (in PATH)`;
}
