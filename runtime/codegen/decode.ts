/**
 * Turns record bytes into JavaScript values: the header shared by every probe and the fields a
 * {@link RecordLayout} placed. Decoding avoids TextDecoder for the short ASCII strings that
 * dominate (comm, paths) since it runs once per event.
 *
 * @module
 */
import { type FieldDecoding, Header, type RecordField } from "./record.ts";

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

/** Decodes one field; `base` is the record's offset in `view`. */
export function decodeField(view: DataView, base: number, f: RecordField): unknown {
  const d: FieldDecoding = f.decoding;
  const off = base + f.offset;
  switch (d.type) {
    case "int":
      return readInt(view, off, d.size, d.signed);
    case "pointer":
      return view.getBigUint64(off, true);
    case "string":
      return readCString(view, off, d.size);
    case "bytes":
      return copyBytes(view, off, d.size);
    case "buffer":
      return copyBytes(view, off, Math.min(d.size, view.getUint32(base + d.lengthOffset, true)));
    case "int_array": {
      const out: number[] = [];
      for (let i = 0; i < d.length; i++) {
        out.push(readInt(view, off + i * d.elemSize, d.elemSize, d.signed));
      }
      return out;
    }
  }
}

/** The fields every event has. */
export interface EventHeader {
  /** Process id (thread group id). */
  pid: number;
  /** Thread id. */
  tid: number;
  /** Command name of the current task (at most 15 characters). */
  comm: string;
  /** CPU the probe fired on. */
  cpu: number;
  /** Kernel monotonic time of the probe, in nanoseconds (`bpf_ktime_get_ns`). */
  timestampNs: number;
}

/** Decodes the record header at `base`. */
export function decodeHeader(view: DataView, base: number): EventHeader {
  return {
    pid: view.getUint32(base + Header.pid, true),
    tid: view.getUint32(base + Header.tid, true),
    comm: readCString(view, base + Header.comm, 16),
    cpu: view.getUint32(base + Header.cpu, true),
    timestampNs: Number(view.getBigUint64(base + Header.time, true)),
  };
}

/** Builds a decoder that returns an object of the named fields. */
export function objectDecoder(
  fields: readonly RecordField[],
): (view: DataView, base: number) => Record<string, unknown> {
  return (view, base) => {
    const out: Record<string, unknown> = {};
    for (const f of fields) out[f.name] = decodeField(view, base, f);
    return out;
  };
}
