/**
 * The smallest BTF that describes a program's functions, which the kernel requires (as
 * `func_info`) before it takes a program with subprograms, such as a `loop` callback. The main
 * program is `long main(void *ctx)`; each subprogram is a static `long cbN(long i, void *ctx)`,
 * the shape the `loop` helper calls.
 *
 * @module
 */
import { libbpf } from "./ffi.ts";
import { BpfError } from "./errors.ts";

const BTF_MAGIC = 0xeb9f;
const HEADER_SIZE = 24;
const KIND = { INT: 1, PTR: 2, FUNC: 12, FUNC_PROTO: 13 } as const;
const INT_SIGNED = 1;
/** Type ids of the fixed part: long, void *, the main prototype, the callback prototype. */
const LONG = 1, VOID_PTR = 2, MAIN_PROTO = 3, CALLBACK_PROTO = 4;
/** The main function's type id; subprogram k (from 0) is FIRST_CALLBACK + k. */
const MAIN = 5, FIRST_CALLBACK = 6;

/** `func_info` records (`struct bpf_func_info`: insn_off, type_id) for these start slots. */
export function funcInfo(starts: readonly number[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8 * (starts.length + 1));
  const v = new DataView(out.buffer);
  [0, ...starts].forEach((slot, k) => {
    v.setUint32(8 * k, slot, true);
    v.setUint32(8 * k + 4, k === 0 ? MAIN : FIRST_CALLBACK + k - 1, true);
  });
  return out;
}

/** The BTF blob for a main program and `subprograms` callbacks. */
export function functionBtf(subprograms: number): Uint8Array<ArrayBuffer> {
  const strings: string[] = [""];
  const name = (s: string) => {
    const off = strings.reduce((n, t) => n + t.length + 1, 0);
    strings.push(s);
    return off;
  };
  const words: number[] = [];
  const type = (nameOff: number, kind: number, vlen: number, sizeOrType: number) =>
    words.push(nameOff, (kind << 24) | vlen, sizeOrType);
  type(name("long"), KIND.INT, 0, 8);
  words.push((INT_SIGNED << 24) | 64);
  type(0, KIND.PTR, 0, 0);
  type(0, KIND.FUNC_PROTO, 1, LONG);
  words.push(name("ctx"), VOID_PTR);
  type(0, KIND.FUNC_PROTO, 2, LONG);
  words.push(name("i"), LONG, name("data"), VOID_PTR);
  type(name("main"), KIND.FUNC, 0, MAIN_PROTO); // vlen 0: static linkage
  for (let k = 0; k < subprograms; k++) type(name(`cb${k}`), KIND.FUNC, 0, CALLBACK_PROTO);
  const text = new TextEncoder().encode(strings.join("\0") + "\0");
  const typeLen = 4 * words.length;
  const out = new Uint8Array(HEADER_SIZE + typeLen + text.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, BTF_MAGIC, true);
  v.setUint8(2, 1); // version
  v.setUint32(4, HEADER_SIZE, true);
  v.setUint32(8, 0, true); // type_off
  v.setUint32(12, typeLen, true);
  v.setUint32(16, typeLen, true); // str_off
  v.setUint32(20, text.length, true);
  words.forEach((w, k) => v.setUint32(HEADER_SIZE + 4 * k, w >>> 0, true));
  out.set(text, HEADER_SIZE + typeLen);
  return out;
}

/** Loads the function BTF for `subprograms` callbacks; the caller closes the fd. */
export function loadFunctionBtf(subprograms: number): number {
  const blob = functionBtf(subprograms);
  const fd = libbpf().bpf_btf_load(blob, BigInt(blob.length), null);
  if (fd < 0) throw new BpfError("load the BTF of a program's functions", -fd);
  return fd;
}
