/**
 * Codecs give a map's raw key and value bytes a TypeScript type: `TypedMap<number, bigint>`
 * over a `u32 -> u64` hash, or a struct codec for a record of fields.
 *
 * @module
 */

/** Converts between a value and its fixed-size little-endian bytes. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T, view: DataView, offset: number): void;
  decode(view: DataView, offset: number): T;
}

/** Unsigned 32-bit integers. */
export const u32: Codec<number> = {
  size: 4,
  encode: (v, d, o) => d.setUint32(o, v, true),
  decode: (d, o) => d.getUint32(o, true),
};

/** Signed 32-bit integers. */
export const i32: Codec<number> = {
  size: 4,
  encode: (v, d, o) => d.setInt32(o, v, true),
  decode: (d, o) => d.getInt32(o, true),
};

/** Unsigned 64-bit integers, as bigint so no value loses precision. */
export const u64: Codec<bigint> = {
  size: 8,
  encode: (v, d, o) => d.setBigUint64(o, v, true),
  decode: (d, o) => d.getBigUint64(o, true),
};

/** A NUL-padded string of `size` bytes (a `char[size]` key such as a command name). */
export function chars(size: number): Codec<string> {
  return {
    size,
    encode(v, d, o) {
      const bytes = new TextEncoder().encode(v).subarray(0, size);
      for (let i = 0; i < size; i++) d.setUint8(o + i, bytes[i] ?? 0);
    },
    decode(d, o) {
      const bytes = new Uint8Array(d.buffer, d.byteOffset + o, size);
      const end = bytes.indexOf(0);
      return new TextDecoder().decode(bytes.subarray(0, end < 0 ? size : end));
    },
  };
}

/** A struct of codecs laid out one after another at the given byte offsets. */
export function struct<T extends Record<string, unknown>>(
  fields: { [K in keyof T]: { offset: number; codec: Codec<T[K]> } },
  size: number,
): Codec<T> {
  const entries = Object.entries(fields) as [keyof T, { offset: number; codec: Codec<unknown> }][];
  return {
    size,
    encode(v, d, o) {
      for (const [k, f] of entries) f.codec.encode(v[k], d, o + f.offset);
    },
    decode(d, o) {
      const out = {} as T;
      for (const [k, f] of entries) out[k] = f.codec.decode(d, o + f.offset) as T[keyof T];
      return out;
    },
  };
}

/** The bytes of `value`. */
export function encode<T>(codec: Codec<T>, value: T): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(codec.size);
  codec.encode(value, new DataView(out.buffer), 0);
  return out;
}

/** The value in `bytes` at `offset`. */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array, offset = 0): T {
  return codec.decode(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
}
