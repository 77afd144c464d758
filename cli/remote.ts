/**
 * Recipes from a URL run as root, so `probe run URL` runs one only when the whole module graph
 * it loads is pinned by an integrity value (`--integrity sha256-<base64>`) or the user says
 * `--trust`. The graph is fetched once, into Deno's cache, with a lockfile recording every
 * module's hash (`deno cache`, which runs none of the code); the pin is the SHA-256 of that
 * graph; the recipe then runs from the cache only (`--cached-only`), every module checked
 * against the same lockfile (`--frozen`), so the bytes that run are the bytes that were pinned
 * and nothing is downloaded twice. Unpinned, nothing of it runs: its modules and pin are shown.
 *
 * Nothing is left in the temporary directory: the lockfile's directory lives while `deno
 * cache` writes it (one a killed run left is removed by the next: owned_temp.ts), and the
 * run reads the lockfile from a file with no name (unlinked_file.ts).
 *
 * @module
 */
import { makeOwnedTempDir, removeOrphans } from "./owned_temp.ts";
import { mistypedModules } from "./module_types.ts";
import { denoTool } from "./deno_tool.ts";

/** Prefix of the directories the lockfiles are written in. */
const LOCK_DIR_PREFIX = "probe-remote-";

/** A remote recipe that cannot be fetched, or could not run as sent; the message says why. */
export class RemoteRecipeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RemoteRecipeError";
  }
}

/** A remote recipe's module graph, fetched into Deno's cache and locked. */
export interface LockedGraph {
  /** The lockfile's text (Deno's deno.lock format), for `deno run --lock --frozen`. */
  lock: string;
  /** Every module of the graph and its SHA-256 (hex), sorted by URL or specifier. */
  modules: Array<[string, string]>;
  /** The pin: `sha256-<base64>` of the graph. */
  integrity: string;
}

/** Standard Subresource Integrity form of a SHA-256 digest. */
function sri(digest: Uint8Array): string {
  return `sha256-${btoa(String.fromCharCode(...digest))}`;
}

/**
 * The digest an integrity value names, from `sha256-<base64>` (SRI) or `sha256-<hex>`;
 * undefined when it is neither.
 */
export function integrityDigest(value: string): Uint8Array | undefined {
  const m = /^sha256-(.+)$/.exec(value);
  if (!m) return undefined;
  if (/^[0-9a-f]{64}$/i.test(m[1])) {
    return Uint8Array.from(m[1].match(/../g)!, (h) => parseInt(h, 16));
  }
  try {
    const bytes = Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
    return bytes.length === 32 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** True when `value` (SRI or hex) names the same digest as the SRI `integrity`. */
export function integrityMatches(value: string, integrity: string): boolean {
  const [a, b] = [integrityDigest(value), integrityDigest(integrity)];
  return a !== undefined && b !== undefined && a.every((x, i) => x === b[i]);
}

/**
 * Fetches the module graph of `url` once into Deno's cache (`deno cache --reload` for its
 * origin, so the cache holds what the server sends now) and locks it. Throws a one-line
 * {@link RemoteRecipeError} when it cannot be fetched, or when a module is sent with a content
 * type that would make Deno load it as something else than its name says.
 */
export async function lockGraph(url: string): Promise<LockedGraph> {
  await removeOrphans(LOCK_DIR_PREFIX);
  const dir = await makeOwnedTempDir(LOCK_DIR_PREFIX);
  try {
    const lock = `${dir}/deno.lock`;
    const cached = await denoTool([
      "cache",
      "--quiet",
      "--no-config",
      `--lock=${lock}`,
      `--reload=${new URL(url).origin}`,
      url,
    ]);
    if (!cached.ok) {
      // Sent as text/html or JavaScript, a .ts file is parsed as JavaScript: its types fail.
      const hint = /SyntaxError/.test(cached.error)
        ? "; if its server sends .ts files as text/html or JavaScript, Deno parses them as " +
          "JavaScript: have it send them as application/typescript"
        : "";
      throw new RemoteRecipeError(`cannot fetch ${url}: ${cached.error}${hint}`);
    }
    const mistyped = await mistypedModules(url, lock).catch((e: Error) => {
      throw new RemoteRecipeError(`cannot read the modules of ${url}: ${e.message}`);
    });
    if (mistyped.length) {
      throw new RemoteRecipeError(
        `cannot run ${url}: ${mistyped.join("; ")}; have the server send .ts files as ` +
          `application/typescript (text/plain and no type work too)`,
      );
    }
    const text = await Deno.readTextFile(lock);
    const locked = JSON.parse(text) as {
      remote?: Record<string, string>;
      npm?: Record<string, { integrity?: string }>;
      specifiers?: Record<string, string>;
    };
    const modules: Array<[string, string]> = [
      ...Object.entries(locked.remote ?? {}),
      ...Object.entries(locked.npm ?? {}).map(([k, v]): [string, string] => [
        `npm:${k}`,
        v.integrity ?? "",
      ]),
      ...Object.entries(locked.specifiers ?? {}).map(([k, v]): [string, string] => [k, v]),
    ].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const canonical = new TextEncoder().encode(JSON.stringify([url, modules]));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", canonical));
    return { lock: text, modules, integrity: sri(digest) };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `deno run` arguments that run `url` from the cache only, checked against lockfile `lock`. */
export function lockedRunArgs(url: string, lock: string): string[] {
  return ["run", "-A", "--no-config", "--cached-only", `--lock=${lock}`, "--frozen", url];
}
