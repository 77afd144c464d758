/**
 * Starting a command to trace: it is created stopped, so that its pid can be put in the
 * kernel's filter before it runs a single instruction of its own, then resumed.
 *
 * @module
 */

/** A command started stopped. */
export interface StoppedChild {
  pid: number;
  status: Promise<Deno.CommandStatus>;
  /** Lets the command run. */
  resume(): void;
  /** True once it has exited. */
  readonly exited: boolean;
  /** Kills it, unless it has exited. */
  kill(): void;
}

function state(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** Starts `argv` stopped (the shell stops itself, then execs the command in place). */
export async function startStopped(argv: string[]): Promise<StoppedChild> {
  if (argv.length === 0) throw new TypeError("The command to trace is empty");
  const proc = new Deno.Command("/bin/sh", {
    args: ["-c", 'kill -STOP $$; exec "$@"', "tsprobe-child", ...argv],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  let done = false;
  const status = proc.status.then((s) => {
    done = true;
    return s;
  });
  // Wait until the shell has stopped itself (state T), or died (a bad command).
  for (let i = 0; i < 500 && !done && state(proc.pid) !== "T"; i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
  return {
    pid: proc.pid,
    status,
    resume: () => {
      if (!done) Deno.kill(proc.pid, "SIGCONT");
    },
    get exited() {
      return done;
    },
    kill: () => {
      if (!done) proc.kill("SIGKILL");
    },
  };
}
