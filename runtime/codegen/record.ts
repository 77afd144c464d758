/**
 * The layout of an event record: a u32 tag saying which consumer it is for, then the captured
 * fields placed by {@link RecordLayout}. The kernel builds the record in a per-CPU scratch map
 * value, evaluates predicates and aggregations on it, and copies it to the ring buffer only
 * for handlers in JavaScript.
 *
 * @module
 */

/** Offset of the u32 tag naming the consumer (the JavaScript handler) of a record. */
export const TAG_OFFSET = 0;
/** Bytes before the first field. */
export const RECORD_START = 8;

/** How a field's bytes become a JavaScript value. */
export type FieldDecoding =
  | { type: "int"; size: 1 | 2 | 4 | 8; signed: boolean }
  /** A u64 nanosecond count; all ones means "unknown" and decodes as undefined. */
  | { type: "latency" }
  | { type: "pointer" }
  | { type: "string"; size: number }
  | { type: "bytes"; size: number }
  /** A u32 count at the field's offset, then up to `size` bytes from offset + 8. */
  | { type: "buffer"; size: number }
  | { type: "int_array"; elemSize: 1 | 2 | 4 | 8; signed: boolean; length: number };

/** Places fields after the tag, each aligned to 8 so any may be read as words. */
export class RecordLayout {
  size = RECORD_START;

  /** Reserves `bytes` aligned to 8; returns the offset. */
  reserve(bytes: number): number {
    const off = Math.ceil(this.size / 8) * 8;
    this.size = off + bytes;
    return off;
  }

  /** Total size rounded to 8, as the ring buffer stores it. */
  get recordSize(): number {
    return Math.ceil(this.size / 8) * 8;
  }
}

/** Bytes a decoded field occupies. */
export function decodingSize(d: FieldDecoding): number {
  switch (d.type) {
    case "int":
      return d.size;
    case "latency":
    case "pointer":
      return 8;
    case "string":
    case "bytes":
      return d.size;
    case "buffer":
      return 8 + d.size;
    case "int_array":
      return d.elemSize * d.length;
  }
}
