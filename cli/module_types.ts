/**
 * Deno decides how to load a remote module by the content type its server sends, not by its
 * name: `.ts` sent as text/plain, application/octet-stream or with no type is TypeScript (by
 * its extension), but sent as text/html it is JavaScript (the root) or not a module at all (an
 * import), and `deno cache` still succeeds. This finds such modules in a cached graph, so that
 * probe says so in one line instead of a run failing in Deno's parser.
 *
 * @module
 */
import { denoTool } from "./deno_tool.ts";

/** What `deno info --json` says of one module. */
interface InfoModule {
  specifier: string;
  mediaType?: string;
  local?: string;
  error?: string;
}

const TYPESCRIPT_NAME = /\.(ts|mts|cts|tsx)$/;
const JAVASCRIPT = ["JavaScript", "Mjs", "Cjs", "Jsx"];

/** The content type the server sent, from the metadata line Deno's cache appends to a file. */
function sentType(local: string | undefined): string | undefined {
  if (local === undefined) return undefined;
  try {
    const text = Deno.readTextFileSync(local);
    const meta = /\/\/ denoCacheMetadata=(.*)\s*$/.exec(text)?.[1];
    const headers = meta ? JSON.parse(meta).headers as Record<string, string> : {};
    return headers["content-type"];
  } catch {
    return undefined; // another cache layout: the message goes without the type
  }
}

/**
 * Modules of `url`'s graph (already in Deno's cache, locked by `lock`) that Deno would not
 * load as the TypeScript or JavaScript their names say, each described in a few words.
 * Throws an Error with deno info's first line when the graph cannot be read.
 */
export async function mistypedModules(url: string, lock: string): Promise<string[]> {
  const out = await denoTool(["info", "--json", "--no-config", `--lock=${lock}`, "--frozen", url]);
  if (!out.ok) throw new Error(out.error);
  const info = JSON.parse(out.stdout) as { modules?: InfoModule[] };
  return (info.modules ?? []).flatMap((m) => {
    if (!/^https?:/.test(m.specifier)) return [];
    if (m.error?.includes("Expected a JavaScript or TypeScript module")) {
      return [`${m.specifier} is sent with a content type Deno does not load as a module`];
    }
    if (TYPESCRIPT_NAME.test(new URL(m.specifier).pathname) && JAVASCRIPT.includes(m.mediaType!)) {
      const type = sentType(m.local);
      return [`${m.specifier} is sent as ${type ?? "JavaScript"}, which Deno runs as JavaScript`];
    }
    return [];
  }).sort();
}
