/**
 * A file that exists only while this process holds it open: written, opened, then removed
 * from its directory at once, and handed to child processes by its `/proc/PID/fd/N` path. If
 * this process is killed, the kernel frees it with the process's fds: nothing is left behind.
 *
 * @module
 */
import { makeOwnedTempFile, removeOrphans } from "./owned_temp.ts";

/** Prefix of the files' names while they have one. */
const PREFIX = "probe-file-";

/** An open file with no name in any directory (see {@link unlinkedFile}). */
export interface UnlinkedFile {
  /** `/proc/<this pid>/fd/<fd>`: readable by child processes while the file is open. */
  path: string;
  /** Closes it; the kernel then frees it. */
  close(): void;
}

/**
 * Writes `text` to a new temporary file, keeps it open, and removes its name. The name lives
 * for a few microseconds; it is the owner's (owned_temp.ts), so that the next call removes one
 * whose process was killed within them.
 */
export async function unlinkedFile(text: string): Promise<UnlinkedFile> {
  await removeOrphans(PREFIX);
  const name = await makeOwnedTempFile(PREFIX);
  let file: Deno.FsFile | undefined;
  try {
    await Deno.writeTextFile(name, text);
    file = await Deno.open(name, { read: true });
    const target = await Deno.realPath(name); // what /proc shows when TMPDIR holds a symlink
    // Deno does not tell a file's fd: find the one whose link names the file.
    const fd = [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name).find((n) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${n}`) === target;
      } catch {
        return false; // an fd closed meanwhile
      }
    });
    if (fd === undefined) throw new Error(`cannot find the fd of ${name} in /proc/self/fd`);
    const opened = file;
    return { path: `/proc/${Deno.pid}/fd/${fd}`, close: () => opened.close() };
  } catch (e) {
    file?.close();
    throw e;
  } finally {
    await Deno.remove(name).catch(() => {});
  }
}
