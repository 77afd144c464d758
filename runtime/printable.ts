/**
 * Text from traced processes made safe for a terminal: file names and command names are chosen
 * by whoever runs the traced program, and an escape sequence in one must not drive the
 * terminal of the person reading the trace. Control characters are written as strace writes
 * them (`\n`, `\t`, `\x1b`), and a backslash as `\\`, so the text can still be read back.
 *
 * @module
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\" };

/**
 * `text` with C0 and C1 control characters, DEL and backslashes escaped.
 *
 * @example Escapes
 * ```ts
 * import { printable } from "./printable.ts";
 * if (printable("a\x1b[2Jb\n") !== "a\\x1b[2Jb\\n") throw new Error("not escaped");
 * ```
 */
export function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\x00-\x1f\x7f-\x9f\\]/g,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/**
 * `JSON.stringify(value)`, with DEL and the C1 control characters written `\u007f` ... `\u009f`:
 * JSON escapes only C0, and a terminal may act on U+009B (CSI) as on ESC [. The same JSON.
 *
 * @example Escapes CSI
 * ```ts
 * import { printableJson } from "./printable.ts";
 * if (printableJson(["\x9b2J"]) !== '["\\u009b2J"]') throw new Error("not escaped");
 * ```
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\x7f-\x9f]/g,
    (c) => `\\u00${c.charCodeAt(0).toString(16)}`,
  );
}
