/**
 * FNV-1a, 32 bits, as 8 hex digits: a short suffix for map names that must differ with what
 * they hold (a pattern's matched names, a probe's options).
 *
 * @module
 */

/** FNV-1a of `text`, as 8 lowercase hex digits. */
export function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
