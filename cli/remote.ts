/**
 * Recipes from a URL run as root, so `probe run URL` runs one only when its content is pinned
 * by an integrity hash (`--integrity sha256-<hex>`) or the user says `--trust`; otherwise it
 * shows what the recipe would attach and compile into the kernel, and the hash to pin.
 *
 * @module
 */

/** `sha256-<hex>` of a text. */
export async function integrityOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256-${
    [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Fetches a recipe's text; throws a one-line error. */
export async function fetchRecipe(url: string): Promise<string> {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  return await response.text();
}
