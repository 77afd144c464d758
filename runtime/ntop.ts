/**
 * Network addresses as text, like inet_ntop(3): the bytes a tracepoint carries (`daddr`,
 * `daddr_v6` of sock:inet_sock_set_state) as "127.0.0.1" or "2001:db8::1".
 *
 * @module
 */

/** `AF_INET` and `AF_INET6`, as the kernel numbers them. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;

/**
 * An IPv4 (4 bytes) or IPv6 (16 bytes) address as text; IPv6 with its longest run of zero
 * groups shortened to "::" (RFC 5952) and IPv4-mapped addresses as "::ffff:1.2.3.4".
 *
 * @example Both families
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ntop } from "./ntop.ts";
 * equal(ntop([127, 0, 0, 1]), "127.0.0.1");
 * equal(ntop([0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 1]), "2001:db8::1");
 * ```
 */
export function ntop(bytes: ArrayLike<number>): string {
  const b = Array.from(bytes);
  if (b.length === 4) return b.join(".");
  if (b.length !== 16) throw new RangeError(`an address has 4 or 16 bytes, not ${b.length}`);
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b.slice(12).join(".")}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  // The longest run of two or more zero groups, the first of equals.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLength))}`;
}
