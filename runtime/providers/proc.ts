/**
 * The proc provider, after DTrace's: `exec` when a process has replaced its program
 * (sched:sched_process_exec, in the new program's context), with the whole command line
 * (`argv`, read in the kernel from the new image's argument area, so a process that exits at
 * once is seen complete) and its parent's pid.
 *
 * @module
 */
import {
  alu64,
  call,
  imm,
  jmp,
  ldx,
  mov64,
  R0,
  R1,
  R10,
  R2,
  R3,
  R7,
  st,
  stx,
} from "../../bpf/asm/mod.ts";
import type { ProgramBuilder } from "../codegen/builder.ts";
import { type EventField, type EventHeader, field } from "../codegen/fields.ts";
import { readMember } from "../codegen/struct_read.ts";
import type { ProbeRequest } from "./provider.ts";
import { describeRequest, type Provider } from "./probe_info.ts";
import { tracepointSite } from "./tracepoint.ts";

/** A process has replaced its program (execve succeeded). */
export interface ExecEvent extends EventHeader {
  /** The probe. */
  probe: "proc:exec";
  /** The file executed, as execve was given it. */
  filename: string;
  /** The command line: every argument, as the new program sees them (up to 1 KiB in all). */
  argv: string[];
  /** The parent process's pid. */
  ppid: number;
}

/** Bytes of the argument area kept: the command line up to here. */
const ARGV_SIZE = 1024;

/** `R0 = current->member` (a path from `struct task_struct`). */
function currentMember(b: ProgramBuilder, path: string): void {
  b.emit(call("get_current_task"), mov64(R1, R0));
  readMember(b, R1, "task_struct", path, R0);
}

/** `argv`: the new image's argument area [arg_start, arg_end), NUL-separated arguments. */
function argvField(): EventField {
  return {
    ...field(["argv"], { type: "buffer", size: ARGV_SIZE }, (b, dst) => {
      const start = b.alloc(8);
      const nonNegative = b.fresh("argv_len_ok");
      const bounded = b.fresh("argv_bounded");
      const done = b.fresh("argv_done");
      currentMember(b, "mm->arg_start");
      b.emit(stx("DW", R10, start, R0));
      currentMember(b, "mm->arg_end");
      b.emit(ldx("DW", R1, R10, start), alu64("SUB", R0, R1), mov64(R2, R0));
      // Clamped to [0, ARGV_SIZE] on every path, for the verifier.
      b.emit(jmp("JSGE", R2, imm(0), nonNegative), mov64(R2, imm(0))).mark(nonNegative);
      b.emit(jmp("JLE", R2, imm(ARGV_SIZE), bounded), mov64(R2, imm(ARGV_SIZE))).mark(bounded);
      b.emit(stx("W", R7, dst, R2), ldx("DW", R3, R10, start), mov64(R1, R7));
      b.emit(alu64("ADD", R1, imm(dst + 8)), call("probe_read_user"));
      b.emit(jmp("JSGE", R0, imm(0), done), st("W", R7, dst, 0)).mark(done);
    }),
    type: undefined,
    transform: (bytes) => {
      const text = new TextDecoder().decode(bytes as Uint8Array);
      const args = text.split("\0");
      // The area ends with the last argument's NUL: no empty argument after it.
      if (args.at(-1) === "") args.pop();
      return args;
    },
  };
}

/** A request for proc probe `probe` ("exec"). */
export function procRequest(probe: string): ProbeRequest {
  if (probe !== "exec") throw new TypeError(`Unknown proc probe '${probe}': use exec`);
  return {
    name: "proc:exec",
    key: "proc:exec",
    sites: (ctx) => {
      const tp = tracepointSite("sched", "sched_process_exec", ctx);
      const filename = tp.fields.find((f) => f.path.join(".") === "args.filename")!;
      const u32 = { type: "int", size: 4, signed: false } as const;
      return [{
        ...tp,
        name: "proc:exec",
        fields: [
          ...tp.fields.filter((f) => f.path[0] !== "args"),
          { ...filename, path: ["filename"] },
          argvField(),
          field(["ppid"], u32, (b, dst) => {
            currentMember(b, "real_parent->tgid");
            b.emit(stx("W", R7, dst, R0));
          }),
        ],
        constants: [{ path: ["probe"], constant: "proc:exec" }],
      }];
    },
  };
}

/** Process lifecycle events. */
export const procProvider: Provider = {
  name: "proc",
  list: (match) => match("proc:exec") ? [describeRequest("proc", procRequest("exec"))] : [],
};
