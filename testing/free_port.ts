/**
 * A free TCP port on 127.0.0.1, for a server a test or benchmark starts. A fixture of tests/
 * and bench/, so it lives in neither.
 *
 * @module
 */

/** A free TCP port on 127.0.0.1 (free when asked: the caller binds it soon after). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
