/**
 * Kernel type information read from the running kernel's BTF (`/sys/kernel/btf/vmlinux`)
 * through libbpf's BTF API: struct layouts, enum values and raw tracepoint signatures, so
 * generated programs use this kernel's offsets instead of compiled-in ones.
 *
 * Types are decoded lazily by id from libbpf's in-memory records: vmlinux holds over 100k
 * types and a probe touches a few dozen.
 *
 * @module
 */
import { cstr, errno, libbpf, strerror } from "./ffi.ts";
import { closeMatches } from "../system/suggest.ts";

/** `BTF_KIND_*` values from `include/uapi/linux/btf.h`. */
const Kind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** `struct btf_type` is three u32s; kind-specific records follow it. */
const HEADER_SIZE = 12;

/** A member of a struct or union. */
export interface BtfMember {
  /** Empty for an anonymous struct or union member. */
  name: string;
  type: number;
  /** Offset from the start of the enclosing struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 when the member is not a bitfield. */
  bitfieldSize: number;
}

/** One enumerator; `bigint` because ENUM64 values exceed 2^53. */
export interface BtfEnumValue {
  name: string;
  value: bigint;
}

/** A named parameter of a function prototype (names are empty in typedef'd prototypes). */
export interface BtfParam {
  name: string;
  type: number;
}

/** One variable placed in a data section. */
export interface BtfSecInfo {
  type: number;
  offset: number;
  size: number;
}

/** A decoded BTF type; `id` is its index in the BTF (0 is `void`). */
export type BtfType =
  | { id: number; kind: "void" }
  | {
    id: number;
    kind: "int";
    name: string;
    size: number;
    signed: boolean;
    /** Value bits, which may be fewer than `size * 8`. */
    bits: number;
    bitOffset: number;
    char: boolean;
    bool: boolean;
  }
  | { id: number; kind: "ptr"; target: number }
  | { id: number; kind: "array"; elem: number; length: number }
  | { id: number; kind: "struct" | "union"; name: string; size: number; members: BtfMember[] }
  | {
    id: number;
    kind: "enum";
    name: string;
    size: number;
    signed: boolean;
    values: BtfEnumValue[];
  }
  | { id: number; kind: "fwd"; name: string; union: boolean }
  | { id: number; kind: "typedef"; name: string; target: number }
  | { id: number; kind: "volatile" | "const" | "restrict"; target: number }
  /** `name` is the tag, e.g. "rcu" or "user". */
  | { id: number; kind: "type_tag"; name: string; target: number }
  | { id: number; kind: "func"; name: string; proto: number }
  | { id: number; kind: "func_proto"; ret: number; params: BtfParam[]; variadic: boolean }
  | { id: number; kind: "float"; name: string; size: number }
  | { id: number; kind: "var"; name: string; type: number }
  | { id: number; kind: "datasec"; name: string; size: number; vars: BtfSecInfo[] }
  /** `componentIdx` is -1 when the tag applies to `target` itself, else a member or param. */
  | { id: number; kind: "decl_tag"; name: string; target: number; componentIdx: number };

/** Kinds that carry a name that {@link Btf.find} can look up. */
export type BtfNamedKind =
  | "int"
  | "struct"
  | "union"
  | "enum"
  | "fwd"
  | "typedef"
  | "func"
  | "float";

/** Where a (possibly nested) member sits inside a struct. */
export interface FieldRef {
  /** Byte offset from the start of the outer struct (rounded down for bitfields). */
  offset: number;
  /** Bit offset from the start of the outer struct. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 when the member is not a bitfield. */
  bitfieldSize: number;
  type: number;
  /** Size of the member's type in bytes (of the storage type for bitfields). */
  size: number;
}

/** One argument of a raw tracepoint, after the hidden `void *` context. */
export interface TracepointArg {
  name: string;
  type: number;
  /** The C spelling of the type, e.g. "struct task_struct *". */
  typeName: string;
}

/** Raised when BTF cannot be loaded or a type, member or value is not in it. */
export class BtfError extends Error {
  /** Existing names close to the one asked for, best first (for "did you mean"). */
  readonly suggestions: readonly string[];
  constructor(message: string, suggestions: readonly string[] = []) {
    super(message);
    this.name = "BtfError";
    this.suggestions = suggestions;
  }
}

/** The `BTF_KIND_*` values that each name-carrying kind covers. */
const KIND_IDS: Record<BtfNamedKind, readonly number[]> = {
  int: [Kind.INT],
  struct: [Kind.STRUCT],
  union: [Kind.UNION],
  enum: [Kind.ENUM, Kind.ENUM64],
  fwd: [Kind.FWD],
  typedef: [Kind.TYPEDEF],
  func: [Kind.FUNC],
  float: [Kind.FLOAT],
};

let vmlinuxBtf: Btf | undefined;

/** A loaded BTF blob with lazily decoded, cached types. */
export class Btf {
  readonly #handle: Deno.PointerObject;
  /** Number of type ids, including `void` (id 0). */
  readonly count: number;
  readonly #types = new Map<number, BtfType>();
  #enumIndex?: Map<string, bigint>;

  private constructor(handle: Deno.PointerObject) {
    this.#handle = handle;
    this.count = libbpf().btf__type_cnt(handle);
  }

  /** The running kernel's BTF, loaded once per process and kept (probes need it throughout). */
  static vmlinux(): Btf {
    if (vmlinuxBtf) return vmlinuxBtf;
    const handle = libbpf().btf__load_vmlinux_btf();
    if (!handle) {
      const code = errno();
      throw new BtfError(
        `Cannot load the kernel's BTF from /sys/kernel/btf/vmlinux: ${strerror(code)}. ` +
          `Use a kernel built with CONFIG_DEBUG_INFO_BTF=y`,
      );
    }
    vmlinuxBtf = new Btf(handle);
    return vmlinuxBtf;
  }

  /** The type with this id, decoded on first use. */
  type(id: number): BtfType {
    let t = this.#types.get(id);
    if (!t) {
      t = this.#decode(id);
      this.#types.set(id, t);
    }
    return t;
  }

  /** The first type of this kind and name (an ENUM64 counts as "enum"), or undefined. */
  find<K extends BtfNamedKind>(name: string, kind: K): BtfType & { kind: K } | undefined {
    const lib = libbpf();
    const cname = cstr(name);
    for (const k of KIND_IDS[kind]) {
      const id = lib.btf__find_by_name_kind(this.#handle, cname, k);
      // libbpf answers 0 (void) for the name "void" whatever the kind.
      if (id > 0) return this.type(id) as BtfType & { kind: K };
    }
    return undefined;
  }

  /** The type behind typedefs and const/volatile/restrict/type_tag qualifiers. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    while (
      t.kind === "typedef" || t.kind === "const" || t.kind === "volatile" ||
      t.kind === "restrict" || t.kind === "type_tag"
    ) t = this.type(t.target);
    return t;
  }

  /** Size of the type in bytes; throws for types without one (void, functions). */
  sizeOf(id: number): number {
    const size = Number(libbpf().btf__resolve_size(this.#handle, id));
    if (size < 0) {
      throw new BtfError(`Type ${this.typeName(id)} (id ${id}) has no size; use a sized type`);
    }
    return size;
  }

  /** The type as C spells it: "struct task_struct *", "char[16]", "u64", "const char *". */
  typeName(id: number): string {
    return this.#declare(id, "");
  }

  /** The pointed-to type id when `id` is a pointer (through typedefs and qualifiers). */
  pointee(id: number): number | undefined {
    const t = this.resolve(id);
    return t.kind === "ptr" ? t.target : undefined;
  }

  /**
   * Locates a member by dotted path ("se.vruntime") inside nested structs and unions, looking
   * through anonymous members as C does. Pointers are not followed: callers read them first.
   */
  member(structId: number, path: string): FieldRef {
    let typeId = structId;
    let bitOffset = 0;
    let bitfieldSize = 0;
    for (const part of path.split(".")) {
      const outer = this.resolve(typeId);
      if (outer.kind !== "struct" && outer.kind !== "union") {
        throw new BtfError(
          `Cannot find '${part}' of '${path}': ${this.typeName(typeId)} is not a struct or ` +
            `union. Read pointers explicitly before naming their members`,
        );
      }
      const chain = this.#findMember(outer, part);
      if (!chain) {
        const suggestions = closeMatches(part, this.#memberNames(outer), 5);
        const where = part === path ? "" : ` (of path '${path}')`;
        const hint = suggestions.length
          ? `did you mean ${suggestions.join(", ")}?`
          : "check the name with 'bpftool btf dump file /sys/kernel/btf/vmlinux format c'";
        throw new BtfError(
          `Member '${part}'${where} is not in ${this.typeName(outer.id)}; ${hint}`,
          suggestions,
        );
      }
      for (const m of chain) bitOffset += m.bitOffset;
      ({ type: typeId, bitfieldSize } = chain[chain.length - 1]);
    }
    return {
      offset: Math.floor(bitOffset / 8),
      bitOffset,
      bitfieldSize,
      type: typeId,
      size: this.sizeOf(typeId),
    };
  }

  /**
   * The arguments of a raw tracepoint such as "sched_switch", from the kernel's
   * `btf_trace_<name>` typedef; undefined when this kernel has no such tracepoint.
   */
  rawTracepoint(name: string): TracepointArg[] | undefined {
    const typedef = this.find(`btf_trace_${name}`, "typedef");
    if (!typedef) return undefined;
    const proto = this.resolve(this.pointee(typedef.target) ?? 0);
    if (proto.kind !== "func_proto" || this.typeName(proto.params[0]?.type ?? 0) !== "void *") {
      throw new BtfError(
        `Typedef btf_trace_${name} is not a pointer to a function taking 'void *' first; ` +
          `this kernel's raw tracepoint layout is not supported`,
      );
    }
    // The typedef's parameters are unnamed; __traceiter_<name> has the same ones, named.
    const iter = this.find(`__traceiter_${name}`, "func");
    const iterProto = iter && this.type(iter.proto);
    const named = iterProto?.kind === "func_proto" &&
        iterProto.params.length === proto.params.length
      ? iterProto.params
      : undefined;
    return proto.params.slice(1).map((p, i) => ({
      name: named?.[i + 1].name || `arg${i}`,
      type: p.type,
      typeName: this.typeName(p.type),
    }));
  }

  /** The value of `valueName` in `enum enumName`, or undefined when either is missing. */
  enumValue(enumName: string, valueName: string): bigint | undefined {
    return this.find(enumName, "enum")?.values.find((v) => v.name === valueName)?.value;
  }

  /** The value of an enumerator in any enum (first one wins), e.g. "BPF_MAP_TYPE_RINGBUF". */
  enumValueByName(valueName: string): bigint | undefined {
    this.#enumIndex ??= this.#indexEnums();
    return this.#enumIndex.get(valueName);
  }

  #indexEnums(): Map<string, bigint> {
    const lib = libbpf();
    const index = new Map<string, bigint>();
    for (let id = 1; id < this.count; id++) {
      // Peek at the kind so that only enums are decoded and cached.
      const info = new Deno.UnsafePointerView(lib.btf__type_by_id(this.#handle, id)!).getUint32(4);
      const kind = (info >>> 24) & 0x1f;
      if (kind !== Kind.ENUM && kind !== Kind.ENUM64) continue;
      const t = this.type(id);
      if (t.kind !== "enum") continue;
      for (const v of t.values) if (!index.has(v.name)) index.set(v.name, v.value);
    }
    return index;
  }

  /** The members leading to `name`: anonymous members on the way, then the member itself. */
  #findMember(
    t: BtfType & { kind: "struct" | "union" },
    name: string,
  ): BtfMember[] | undefined {
    for (const m of t.members) {
      if (m.name === name) return [m];
      if (m.name) continue;
      const inner = this.resolve(m.type);
      if (inner.kind !== "struct" && inner.kind !== "union") continue;
      const rest = this.#findMember(inner, name);
      if (rest) return [m, ...rest];
    }
    return undefined;
  }

  /** Every member name reachable without a dot, for suggestions. */
  #memberNames(t: BtfType & { kind: "struct" | "union" }): string[] {
    return t.members.flatMap((m) => {
      if (m.name) return [m.name];
      const inner = this.resolve(m.type);
      return inner.kind === "struct" || inner.kind === "union" ? this.#memberNames(inner) : [];
    });
  }

  /** C declarator syntax: `inner` is what has been declared so far around the name. */
  #declare(id: number, inner: string): string {
    const t = this.type(id);
    // Arrays and functions bind tighter than '*', so a pointer to them needs parentheses.
    const wrapped = inner.startsWith("*") ? `(${inner})` : inner;
    switch (t.kind) {
      case "ptr":
        return this.#declare(t.target, `*${inner}`);
      case "array":
        return this.#declare(t.elem, `${wrapped}[${t.length}]`);
      case "func_proto": {
        const params = t.params.map((p) => this.typeName(p.type));
        if (t.variadic) params.push("...");
        return this.#declare(t.ret, `${wrapped}(${params.join(", ") || "void"})`);
      }
      case "func":
        return this.#declare(t.proto, t.name);
      case "const":
      case "volatile":
      case "restrict":
        // A qualified pointer reads "char *const"; a qualified base type "const char".
        return this.type(t.target).kind === "ptr"
          ? this.#declare(t.target, `${t.kind}${inner && ` ${inner}`}`)
          : `${t.kind} ${this.#declare(t.target, inner)}`;
      case "type_tag":
      case "decl_tag":
        return this.#declare(t.target, inner);
      case "var":
        return this.#declare(t.type, inner);
      default:
        return joinDeclarator(baseName(t), inner);
    }
  }

  #decode(id: number): BtfType {
    if (id === 0) return { id, kind: "void" };
    if (!Number.isInteger(id) || id < 0 || id >= this.count) {
      throw new BtfError(`Type id ${id} is out of range; this BTF has ids 0 to ${this.count - 1}`);
    }
    const v = new Deno.UnsafePointerView(libbpf().btf__type_by_id(this.#handle, id)!);
    const info = v.getUint32(4);
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const name = this.#string(v.getUint32(0));
    const sizeOrType = v.getUint32(8);
    // The `vlen` kind-specific records of `size` bytes that follow the header.
    const records = <T>(size: number, read: (off: number) => T): T[] =>
      Array.from({ length: vlen }, (_, i) => read(HEADER_SIZE + i * size));
    switch (kind) {
      case Kind.INT: {
        const enc = v.getUint32(HEADER_SIZE);
        const flags = enc >>> 24;
        return {
          id,
          kind: "int",
          name,
          size: sizeOrType,
          signed: (flags & 1) !== 0,
          bits: enc & 0xff,
          bitOffset: (enc >>> 16) & 0xff,
          char: (flags & 2) !== 0,
          bool: (flags & 4) !== 0,
        };
      }
      case Kind.PTR:
        return { id, kind: "ptr", target: sizeOrType };
      case Kind.ARRAY:
        return {
          id,
          kind: "array",
          elem: v.getUint32(HEADER_SIZE),
          length: v.getUint32(HEADER_SIZE + 8),
        };
      case Kind.STRUCT:
      case Kind.UNION:
        return {
          id,
          kind: kind === Kind.STRUCT ? "struct" : "union",
          name,
          size: sizeOrType,
          members: records(12, (off) => {
            const raw = v.getUint32(off + 8);
            // With kind_flag set the offset word packs the bitfield width in its top byte.
            return {
              name: this.#string(v.getUint32(off)),
              type: v.getUint32(off + 4),
              bitOffset: kindFlag ? raw & 0xffffff : raw,
              bitfieldSize: kindFlag ? raw >>> 24 : 0,
            };
          }),
        };
      case Kind.ENUM:
        return {
          id,
          kind: "enum",
          name,
          size: sizeOrType,
          signed: kindFlag,
          values: records(8, (off) => ({
            name: this.#string(v.getUint32(off)),
            value: BigInt(kindFlag ? v.getInt32(off + 4) : v.getUint32(off + 4)),
          })),
        };
      case Kind.ENUM64:
        return {
          id,
          kind: "enum",
          name,
          size: sizeOrType,
          signed: kindFlag,
          values: records(12, (off) => {
            const raw = (BigInt(v.getUint32(off + 8)) << 32n) | BigInt(v.getUint32(off + 4));
            return {
              name: this.#string(v.getUint32(off)),
              value: kindFlag ? BigInt.asIntN(64, raw) : raw,
            };
          }),
        };
      case Kind.FWD:
        return { id, kind: "fwd", name, union: kindFlag };
      case Kind.TYPEDEF:
        return { id, kind: "typedef", name, target: sizeOrType };
      case Kind.VOLATILE:
        return { id, kind: "volatile", target: sizeOrType };
      case Kind.CONST:
        return { id, kind: "const", target: sizeOrType };
      case Kind.RESTRICT:
        return { id, kind: "restrict", target: sizeOrType };
      case Kind.TYPE_TAG:
        return { id, kind: "type_tag", name, target: sizeOrType };
      case Kind.FUNC:
        return { id, kind: "func", name, proto: sizeOrType };
      case Kind.FUNC_PROTO: {
        const params = records(8, (off) => ({
          name: this.#string(v.getUint32(off)),
          type: v.getUint32(off + 4),
        }));
        // C's "..." is encoded as a final unnamed parameter of type void.
        const last = params[params.length - 1];
        const variadic = last !== undefined && last.type === 0 && last.name === "";
        if (variadic) params.pop();
        return { id, kind: "func_proto", ret: sizeOrType, params, variadic };
      }
      case Kind.VAR:
        return { id, kind: "var", name, type: sizeOrType };
      case Kind.DATASEC:
        return {
          id,
          kind: "datasec",
          name,
          size: sizeOrType,
          vars: records(12, (off) => ({
            type: v.getUint32(off),
            offset: v.getUint32(off + 4),
            size: v.getUint32(off + 8),
          })),
        };
      case Kind.FLOAT:
        return { id, kind: "float", name, size: sizeOrType };
      case Kind.DECL_TAG:
        return {
          id,
          kind: "decl_tag",
          name,
          target: sizeOrType,
          componentIdx: v.getInt32(HEADER_SIZE),
        };
      default:
        throw new BtfError(
          `Type id ${id} has BTF kind ${kind}, which this version does not know; ` +
            `update tsprobe for this kernel`,
        );
    }
  }

  #string(offset: number): string {
    const p = libbpf().btf__name_by_offset(this.#handle, offset);
    return p ? Deno.UnsafePointerView.getCString(p) : "";
  }
}

/** The keyword-and-name part of a base type: "unsigned int", "struct task_struct". */
function baseName(t: BtfType): string {
  switch (t.kind) {
    case "void":
      return "void";
    case "struct":
    case "union":
    case "enum":
      return `${t.kind} ${t.name || "(anon)"}`;
    case "fwd":
      return `${t.union ? "union" : "struct"} ${t.name}`;
    default:
      return "name" in t ? t.name : t.kind;
  }
}

/** "char" + "[16]" is "char[16]", but "char" + "*" is "char *". */
function joinDeclarator(base: string, inner: string): string {
  if (!inner) return base;
  return inner.startsWith("[") ? base + inner : `${base} ${inner}`;
}
