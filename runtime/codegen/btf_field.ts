/**
 * Event fields found through the kernel's BTF when a lambda or handler names them, such as
 * `e.task.real_parent.tgid`: member names written with dots, pointers followed as C's `->`,
 * offsets and types from the running kernel. Integers and pointers become numbers (bigints
 * for pointers and u64), char arrays and `char *` strings.
 *
 * @module
 */
import { call, R0, R7, stx } from "../../bpf/asm/mod.ts";
import { Btf, BtfError } from "../../bpf/btf.ts";
import type { ProgramBuilder } from "./builder.ts";
import type { EventField } from "./fields.ts";
import { emitKernelRead, emitKernelReadBytes, resolveChain } from "./kernel_read.ts";
import type { FieldDecoding } from "./record.ts";

/** Member names read with dots (`real_parent.tgid`) as a C path (`real_parent->tgid`). */
export function memberPath(btf: Btf, rootTypeId: number, names: readonly string[]): string {
  let type = rootTypeId;
  let path = "";
  for (const name of names) {
    const t = btf.resolve(type);
    const op = t.kind === "ptr" ? "->" : ".";
    const outer = t.kind === "ptr" ? t.target : type;
    // The first name takes no operator unless the root itself is a pointer.
    path += (path !== "" || t.kind === "ptr" ? op : "") + name;
    type = btf.member(outer, name).type;
  }
  return path;
}

/**
 * The field at `path` below a BTF-typed root whose address `root` leaves in R0, or undefined
 * when the kernel's types have no such member (or it is neither a scalar nor text).
 */
export function btfField(
  path: string[],
  rootTypeId: number,
  rootName: string,
  root: (b: ProgramBuilder) => void,
  stringSize: number,
): EventField | undefined {
  const btf = Btf.vmlinux();
  let chain;
  try {
    chain = resolveChain(btf, rootTypeId, memberPath(btf, rootTypeId, path.slice(1)), rootName);
  } catch (e) {
    if (e instanceof BtfError) return undefined;
    throw e;
  }
  const f = chain.field;
  if (f.string) {
    const size = f.string === "inline" ? Math.min(f.size, stringSize) : stringSize;
    const decoding: FieldDecoding = { type: "string", size };
    return {
      path,
      type: { kind: "string", size },
      decoding,
      size,
      capture: (b, dst) => {
        root(b);
        emitKernelReadBytes(b, R0, chain, R7, dst, size);
      },
    };
  }
  if (!f.scalar) return undefined;
  const pointer = btf.resolve(f.type).kind === "ptr";
  const decoding: FieldDecoding = pointer
    ? { type: "pointer" }
    : { type: "int", size: 8, signed: f.signed };
  return {
    path,
    type: { kind: "int", signed: f.signed, bigint: pointer },
    decoding,
    size: 8,
    capture: (b, dst) => {
      root(b);
      emitKernelRead(b, R0, chain, R0);
      b.emit(stx("DW", R7, dst, R0));
    },
  };
}

/** `e.task...`: members of the current task's `struct task_struct`. */
export function taskField(path: string[], stringSize: number): EventField | undefined {
  if (path[0] !== "task" || path.length < 2) return undefined;
  const task = Btf.vmlinux().find("task_struct", "struct");
  if (!task) return undefined;
  return btfField(
    path,
    task.id,
    "task",
    (b) => b.emit(call("get_current_task")),
    stringSize,
  );
}

/**
 * For a `task...` path that names a member the kernel's `struct task_struct` lacks: the path up
 * to that member with close names in its place, best first ("did you mean"); none otherwise.
 */
export function taskFieldSuggestions(path: readonly string[]): string[][] {
  const btf = Btf.vmlinux();
  const task = path[0] === "task" ? btf.find("task_struct", "struct") : undefined;
  if (!task) return [];
  for (let n = 2; n <= path.length; n++) {
    try {
      memberPath(btf, task.id, path.slice(1, n));
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
      return e.suggestions.map((s) => [...path.slice(0, n - 1), s]);
    }
  }
  return [];
}
