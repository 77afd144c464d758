/**
 * The layout of an event record in the ring buffer: a fixed header that every probe writes,
 * then probe-specific fields placed by {@link RecordLayout}.
 *
 * ```
 *  0 u32 probe index    4 u32 cpu
 *  8 u64 ktime (ns)
 * 16 u32 pid (tgid)    20 u32 tid
 * 24 char comm[16]
 * 40 fields...
 * ```
 *
 * @module
 */

export const HEADER_SIZE = 40;
export const Header = { probe: 0, cpu: 4, time: 8, pid: 16, tid: 20, comm: 24 } as const;

/** How a field's bytes become a JavaScript value. */
export type FieldDecoding =
  | { type: "int"; size: 1 | 2 | 4 | 8; signed: boolean }
  | { type: "pointer" }
  | { type: "string"; size: number }
  | { type: "bytes"; size: number }
  /** Up to `size` bytes, how many given by the u32 at record offset `lengthOffset`. */
  | { type: "buffer"; size: number; lengthOffset: number }
  | { type: "int_array"; elemSize: 1 | 2 | 4 | 8; signed: boolean; length: number };

/** A named field at a byte offset in the record. */
export interface RecordField {
  name: string;
  offset: number;
  decoding: FieldDecoding;
}

/** Places fields after the header, each aligned to its natural alignment (at most 8). */
export class RecordLayout {
  size = HEADER_SIZE;
  readonly fields: RecordField[] = [];

  /** Reserves `bytes` aligned to `align`; returns the offset. */
  reserve(bytes: number, align = 8): number {
    const off = Math.ceil(this.size / align) * align;
    this.size = off + bytes;
    return off;
  }

  /** Reserves room for a field and records how it is decoded. */
  add(name: string, decoding: FieldDecoding, bytes = decodingSize(decoding)): number {
    const align = Math.min(8, decoding.type === "int" ? decoding.size : 8);
    const offset = this.reserve(bytes, align);
    this.fields.push({ name, offset, decoding });
    return offset;
  }

  /** Total record size rounded to 8, as the ring buffer stores it. */
  get recordSize(): number {
    return Math.ceil(this.size / 8) * 8;
  }
}

/** Bytes a decoded field occupies. */
export function decodingSize(d: FieldDecoding): number {
  switch (d.type) {
    case "int":
      return d.size;
    case "pointer":
      return 8;
    case "string":
    case "bytes":
    case "buffer":
      return d.size;
    case "int_array":
      return d.elemSize * d.length;
  }
}
