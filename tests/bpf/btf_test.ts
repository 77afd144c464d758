/**
 * Tests of the BTF reader against the running kernel, with `bpftool btf dump ... format raw` as
 * an independent source of truth for ids, offsets and values, since they differ between kernels.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { Btf, BtfError } from "../../bpf/btf.ts";

/** One type of bpftool's raw dump: its header fields and its indented member/value lines. */
interface RawType {
  id: number;
  kind: string;
  name: string;
  fields: Record<string, string>;
  entries: { name: string; fields: Record<string, string> }[];
}

/** `key=value` pairs of a bpftool line. */
function fieldsOf(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
}

async function bpftoolDump(): Promise<Map<number, RawType>> {
  const out = await new Deno.Command("/usr/sbin/bpftool", {
    args: ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
  }).output();
  if (!out.success) throw new Error(`bpftool failed: ${new TextDecoder().decode(out.stderr)}`);
  const types = new Map<number, RawType>();
  let current: RawType | undefined;
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const header = line.match(/^\[(\d+)\] (\w+) '([^']*)'(.*)$/);
    if (header) {
      current = {
        id: Number(header[1]),
        kind: header[2],
        name: header[3],
        fields: fieldsOf(header[4]),
        entries: [],
      };
      types.set(current.id, current);
      continue;
    }
    const entry = line.match(/^\t'([^']*)'(.*)$/);
    if (entry && current) current.entries.push({ name: entry[1], fields: fieldsOf(entry[2]) });
  }
  return types;
}

const raw = await bpftoolDump();
const rawByName = (kind: string, name: string): RawType => {
  const found = [...raw.values()].find((t) => t.kind === kind && t.name === name);
  assert(found, `bpftool shows no ${kind} ${name}`);
  return found;
};

/**
 * bpftool's bit offset and bitfield size of a dotted member path, descending into '(anon)'
 * members the way C does, so the expectations come from bpftool's numbers alone.
 */
function rawMember(structName: string, path: string): { bitOffset: number; bitfieldSize: number } {
  const underlying = (id: number): RawType => {
    let t = raw.get(id)!;
    while (["TYPEDEF", "CONST", "VOLATILE"].includes(t.kind)) {
      t = raw.get(Number(t.fields.type_id))!;
    }
    return t;
  };
  const search = (
    t: RawType,
    name: string,
  ): { bits: number; size: number; type: number } | null => {
    for (const e of t.entries) {
      const bits = Number(e.fields.bits_offset);
      const type = Number(e.fields.type_id);
      if (e.name === name) return { bits, size: Number(e.fields.bitfield_size ?? 0), type };
      const inner = underlying(type);
      if (e.name === "(anon)" && (inner.kind === "STRUCT" || inner.kind === "UNION")) {
        const found = search(inner, name);
        if (found) return { ...found, bits: bits + found.bits };
      }
    }
    return null;
  };
  let t = rawByName("STRUCT", structName);
  let bitOffset = 0;
  let bitfieldSize = 0;
  for (const part of path.split(".")) {
    const found = search(t, part);
    assert(found, `bpftool shows no member ${part} in ${t.name}`);
    bitOffset += found.bits;
    bitfieldSize = found.size;
    t = underlying(found.type);
  }
  return { bitOffset, bitfieldSize };
}

const btf = Btf.vmlinux();
const struct = (name: string) => {
  const t = btf.find(name, "struct");
  assert(t, `no struct ${name}`);
  return t;
};

/** Checks a member's location against bpftool. */
function assertMatchesBpftool(structName: string, path: string): void {
  const expected = rawMember(structName, path);
  const field = btf.member(struct(structName).id, path);
  assertEquals(
    { bitOffset: field.bitOffset, bitfieldSize: field.bitfieldSize, offset: field.offset },
    { ...expected, offset: Math.floor(expected.bitOffset / 8) },
    `${structName}.${path}`,
  );
}

Deno.test("Btf.vmlinux() loads the kernel BTF once and decodes types lazily into a cache", () => {
  assert(Btf.vmlinux() === btf);
  assertEquals(btf.count, Math.max(...raw.keys()) + 1);
  const task = struct("task_struct");
  assert(btf.type(task.id) === task);
  assertEquals(btf.type(0), { id: 0, kind: "void" });
  throws(() => btf.type(btf.count), BtfError);
});

Deno.test("Btf.find() looks types up by kind and name", () => {
  const task = struct("task_struct");
  assertEquals(task.id, rawByName("STRUCT", "task_struct").id);
  assertEquals(task.size, Number(rawByName("STRUCT", "task_struct").fields.size));
  assertEquals(btf.find("task_struct", "union"), undefined);
  assertEquals(btf.find("no_such_struct_here", "struct"), undefined);
  assertEquals(btf.find("void", "struct"), undefined);
  assertEquals(btf.find("u64", "typedef")?.id, rawByName("TYPEDEF", "u64").id);
  assertEquals(btf.find("perf_callchain_context", "enum")?.kind, "enum");
});

Deno.test("Btf.member() resolves task_struct.pid, tgid and comm at bpftool's offsets", () => {
  for (const path of ["pid", "tgid", "comm"]) assertMatchesBpftool("task_struct", path);
  const comm = btf.member(struct("task_struct").id, "comm");
  assertEquals(btf.typeName(comm.type), "char[16]");
  assertEquals(comm.size, 16);
  const array = btf.type(comm.type);
  assert(array.kind === "array");
  assertEquals(array.length, 16);
  const elem = btf.resolve(array.elem);
  assert(elem.kind === "int" && elem.size === 1);
});

Deno.test("Btf.member() resolves the nested path task_struct.se.vruntime", () => {
  assertMatchesBpftool("task_struct", "se.vruntime");
  const field = btf.member(struct("task_struct").id, "se.vruntime");
  assertEquals(btf.typeName(field.type), "u64");
  assertEquals(field.size, 8);
});

Deno.test("Btf.member() looks through anonymous unions and structs as C does", () => {
  assertMatchesBpftool("bio", "bi_cookie");
  assertMatchesBpftool("sk_buff", "tstamp");
  // pkt_type sits in an anonymous struct inside an anonymous union (struct_group).
  assertMatchesBpftool("sk_buff", "pkt_type");
  assertMatchesBpftool("sk_buff", "headers.tc_index");
});

Deno.test("Btf.member() gives the bit offset and width of bitfields", () => {
  assertMatchesBpftool("sk_buff", "cloned");
  assertMatchesBpftool("sk_buff", "fclone");
  const fclone = btf.member(struct("sk_buff").id, "fclone");
  assertEquals(fclone.bitfieldSize, 2);
  assertEquals(fclone.size, 1);
  assertEquals(btf.member(struct("sk_buff").id, "len").bitfieldSize, 0);
});

Deno.test("Btf.member() names the struct and close matches for a misspelled member", () => {
  const task = struct("task_struct").id;
  throws(() => btf.member(task, "commm"), (e: unknown) => {
    assert(e instanceof BtfError);
    assert(e.message.includes("'commm'") && e.message.includes("struct task_struct"), e.message);
    assert(e.suggestions.includes("comm") && e.message.includes("comm?"), e.message);
    assert(e.suggestions.length <= 5);
    return true;
  });
  throws(() => btf.member(task, "se.vrntime"), (e: unknown) => {
    assert(e instanceof BtfError);
    assert(e.message.includes("struct sched_entity") && e.message.includes("se.vrntime"));
    assertEquals(e.suggestions[0], "vruntime");
    return true;
  });
});

Deno.test("Btf.member() does not follow pointers or descend into non-structs", () => {
  const task = struct("task_struct").id;
  throws(() => btf.member(task, "real_parent.pid"), /struct task_struct \* is not a struct/);
  throws(() => btf.member(task, "comm.x"), BtfError);
});

Deno.test("Btf.pointee() and Btf.resolve() see through pointers, typedefs and qualifiers", () => {
  const task = struct("task_struct");
  const parent = btf.member(task.id, "real_parent");
  assertEquals(btf.pointee(parent.type), task.id);
  assertEquals(btf.pointee(btf.member(task.id, "pid").type), undefined);
  const u64 = btf.resolve(btf.find("u64", "typedef")!.id);
  assert(u64.kind === "int");
  assertEquals({ size: u64.size, signed: u64.signed, bits: u64.bits }, {
    size: 8,
    signed: false,
    bits: 64,
  });
  assertEquals(btf.sizeOf(task.id), task.size);
  throws(() => btf.sizeOf(btf.find("__traceiter_sched_switch", "func")!.id), BtfError);
});

Deno.test("Btf.typeName() prints types as C declares them", () => {
  const task = struct("task_struct");
  assertEquals(btf.typeName(btf.member(task.id, "real_parent").type), "struct task_struct *");
  assertEquals(btf.typeName(btf.find("unsigned int", "int")!.id), "unsigned int");
  assertEquals(btf.typeName(btf.find("u64", "typedef")!.id), "u64");
  assertEquals(btf.typeName(btf.member(struct("tracepoint").id, "name").type), "const char *");
  const hook = btf.find("btf_trace_sched_switch", "typedef")!;
  assertEquals(
    btf.typeName(hook.target),
    "void (*)(void *, bool, struct task_struct *, struct task_struct *, unsigned int)",
  );
});

Deno.test("Btf.rawTracepoint() gives sched_switch's arguments after the context pointer", () => {
  const args = btf.rawTracepoint("sched_switch");
  assertEquals(args?.map((a) => [a.name, a.typeName]), [
    ["preempt", "bool"],
    ["prev", "struct task_struct *"],
    ["next", "struct task_struct *"],
    ["prev_state", "unsigned int"],
  ]);
  assertEquals(btf.pointee(args[1].type), struct("task_struct").id);
  assertEquals(btf.rawTracepoint("no_such_tracepoint"), undefined);
});

Deno.test("Btf.enumValue() reads enum and enum64 values, signed and unsigned", () => {
  const rawValue = (enumName: string, value: string) =>
    BigInt(
      [...raw.values()].find((t) => t.kind.startsWith("ENUM") && t.name === enumName)!
        .entries.find((e) => e.name === value)!.fields.val.replace(/ULL$|LL$/, ""),
    );
  assertEquals(btf.enumValue("bpf_map_type", "BPF_MAP_TYPE_RINGBUF"), 27n);
  assertEquals(
    btf.enumValue("perf_callchain_context", "PERF_CONTEXT_HV"),
    rawValue("perf_callchain_context", "PERF_CONTEXT_HV"),
  );
  assertEquals(btf.enumValue("perf_callchain_context", "PERF_CONTEXT_HV"), 2n ** 64n - 32n);
  assertEquals(btf.enumValue("rpm_status", "RPM_INVALID"), -1n);
  assertEquals(btf.enumValue("bpf_map_type", "BPF_MAP_TYPE_NOPE"), undefined);
  assertEquals(btf.enumValue("no_such_enum", "X"), undefined);
});

Deno.test("Btf.enumValueByName() finds an enumerator in any enum", () => {
  assertEquals(btf.enumValueByName("BPF_MAP_TYPE_RINGBUF"), 27n);
  assertEquals(btf.enumValueByName("TASK_COMM_LEN"), 16n);
  assertEquals(btf.enumValueByName("NO_SUCH_ENUMERATOR"), undefined);
});
