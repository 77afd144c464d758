/**
 * Temporary entries named after the process that made them, by pid and start time
 * (`probe-remote-4242.981234-XXXX`), so that a later run can remove those a killed process
 * (SIGKILL runs no cleanup) left, and never those of a live one, even one whose pid is a
 * reused number: a reused pid has another start time.
 *
 * @module
 */

/** The start time of process `pid` in clock ticks since boot; undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 22; the command name (field 2, in parentheses) may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** `pid.starttime` of this process. */
function ownerTag(): string {
  return `${Deno.pid}.${startTime(Deno.pid)}`;
}

/** The directory temporary entries go to: $TMPDIR, as Deno.makeTempDir uses it, else /tmp. */
function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/** Makes a temporary directory named `<prefix><owner>-XXXX`; the caller removes it. */
export function makeOwnedTempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ prefix: `${prefix}${ownerTag()}-` });
}

/** Makes a temporary file named `<prefix><owner>-XXXX`; the caller removes it. */
export function makeOwnedTempFile(prefix: string): Promise<string> {
  return Deno.makeTempFile({ prefix: `${prefix}${ownerTag()}-` });
}

/**
 * Removes the entries named `<prefix><owner>-*` in the temporary directory whose owner has
 * exited (no process with that pid, or one that started at another time).
 */
export async function removeOrphans(prefix: string): Promise<void> {
  const root = tempRoot();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch {
    return; // no temporary directory yet: nothing was left in it
  }
  for (const { name } of entries) {
    const owner = name.startsWith(prefix) ? /^(\d+)\.(\d+)-/.exec(name.slice(prefix.length)) : null;
    if (!owner || startTime(Number(owner[1])) === owner[2]) continue;
    await Deno.remove(`${root}/${name}`, { recursive: true }).catch(() => {});
  }
}
