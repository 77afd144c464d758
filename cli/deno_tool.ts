/**
 * Running one of Deno's own subcommands (`deno cache`, `deno info`) for the CLI: its output,
 * or the first line of what it said was wrong.
 *
 * @module
 */

/** What a Deno subcommand printed, or its first error line ("error: " taken off). */
export type DenoToolResult = { ok: true; stdout: string } | { ok: false; error: string };

/** Runs `deno ARGS` without colors and collects its output. */
export async function denoTool(args: string[]): Promise<DenoToolResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (out.success) return { ok: true, stdout: text(out.stdout) };
  const first = text(out.stderr).split("\n").find((l) => l.trim()) ?? "";
  return { ok: false, error: first.replace(/^error:\s*/i, "") };
}
