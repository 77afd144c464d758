/**
 * Turns record bytes into JavaScript values: event objects with the fields the kernel captured. Decoding avoids TextDecoder for the short ASCII strings that
 * dominate (comm, paths) since it runs once per event.
 *
 * @module
 */
import type { PlacedField, ViewField } from "./fields.ts";

const utf8 = new TextDecoder();

/** A NUL-terminated string of at most `max` bytes at `off`. */
export function readCString(view: DataView, off: number, max: number): string {
  let s = "";
  for (let i = 0; i < max; i++) {
    const c = view.getUint8(off + i);
    if (c === 0) return s;
    if (c >= 0x80) {
      // Non-ASCII: decode the whole string properly.
      let end = i;
      while (end < max && view.getUint8(off + end) !== 0) end++;
      return utf8.decode(new Uint8Array(view.buffer, view.byteOffset + off, end));
    }
    s += String.fromCharCode(c);
  }
  return s;
}

function copyBytes(view: DataView, off: number, n: number): Uint8Array {
  return new Uint8Array(view.buffer.slice(view.byteOffset + off, view.byteOffset + off + n));
}

function readInt(view: DataView, off: number, size: number, signed: boolean): number {
  switch (size) {
    case 1:
      return signed ? view.getInt8(off) : view.getUint8(off);
    case 2:
      return signed ? view.getInt16(off, true) : view.getUint16(off, true);
    case 4:
      return signed ? view.getInt32(off, true) : view.getUint32(off, true);
    default:
      return Number(signed ? view.getBigInt64(off, true) : view.getBigUint64(off, true));
  }
}

const UNKNOWN_NS = 0xffff_ffff_ffff_ffffn;

/** Decodes one field; `base` is the record's offset in `view`. */
export function decodeField(view: DataView, base: number, f: PlacedField): unknown {
  const d = f.field.decoding;
  const off = base + f.offset;
  switch (d.type) {
    case "int":
      return readInt(view, off, d.size, d.signed);
    case "latency": {
      const ns = view.getBigUint64(off, true);
      return ns === UNKNOWN_NS ? undefined : Number(ns);
    }
    case "pointer":
      return view.getBigUint64(off, true);
    case "string":
      return readCString(view, off, d.size);
    case "bytes":
      return copyBytes(view, off, d.size);
    case "buffer":
      return copyBytes(view, off + 8, Math.min(d.size, view.getUint32(off, true)));
    case "int_array": {
      const out: number[] = [];
      for (let i = 0; i < d.length; i++) {
        out.push(readInt(view, off + i * d.elemSize, d.elemSize, d.signed));
      }
      return out;
    }
  }
}

type Decoder = (view: DataView, base: number) => Record<string, unknown>;

/** A field of a stream's events as the layout placed it. */
export type DecodedField = Pick<ViewField, "event"> & PlacedField;

/**
 * Builds a decoder of records into event objects: each field lands at its event path
 * (`args.filename` in `event.args`), its provider's `transform` applied; constants are set as
 * they are.
 */
export function eventDecoder(
  fields: readonly DecodedField[],
  constants: readonly { path: readonly string[]; constant: unknown }[] = [],
): Decoder {
  const leaves: Array<[string, (view: DataView, base: number) => unknown]> = [];
  const groups = new Map<string, DecodedField[]>();
  const constantGroups = new Map<string, { path: readonly string[]; constant: unknown }[]>();
  for (const f of fields) {
    const [head, ...rest] = f.event;
    const t = f.field.transform;
    if (rest.length === 0) {
      leaves.push([head, t ? (v, b) => t(decodeField(v, b, f)) : (v, b) => decodeField(v, b, f)]);
    } else groups.set(head, [...groups.get(head) ?? [], { ...f, event: rest }]);
  }
  for (const c of constants) {
    const [head, ...rest] = c.path;
    if (rest.length === 0) leaves.push([head, () => c.constant]);
    else constantGroups.set(head, [...constantGroups.get(head) ?? [], { ...c, path: rest }]);
  }
  for (const head of new Set([...groups.keys(), ...constantGroups.keys()])) {
    leaves.push([head, eventDecoder(groups.get(head) ?? [], constantGroups.get(head) ?? [])]);
  }
  return (view, base) => {
    const out: Record<string, unknown> = {};
    for (const [name, decode] of leaves) out[name] = decode(view, base);
    return out;
  };
}
