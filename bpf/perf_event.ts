/**
 * `perf_event_open(2)`, the kernel's handle for tracepoints, uprobes, kprobes and sampling
 * events that a BPF program is attached to.
 *
 * @module
 */
import { errno, libc } from "./ffi.ts";
import { BpfError } from "./errors.ts";

const SYS_PERF_EVENT_OPEN = 298n; // x86_64
const PERF_FLAG_FD_CLOEXEC = 8n;
const ATTR_SIZE = 128; // PERF_ATTR_SIZE_VER7

/** `perf_event_attr.type` values. */
export const PerfType = { hardware: 0, software: 1, tracepoint: 2 } as const;

/** Software event configs (`enum perf_sw_ids`). */
export const SoftwareEvent = { cpu_clock: 0, task_clock: 1 } as const;

/** The fields of `struct perf_event_attr` the runtime sets. */
export interface PerfEventAttr {
  type: number;
  config: bigint;
  /** Sampling period, or frequency in Hz when `freq` is set. */
  sample?: bigint;
  freq?: boolean;
  /** `config1`: the uprobe/kprobe path or symbol pointer. */
  config1?: bigint;
  /** `config2`: the uprobe/kprobe offset. */
  config2?: bigint;
}

/**
 * Opens a perf event for `pid` (-1: every process) on `cpu` (-1: any CPU); returns its fd.
 * `what` names the event in the error when the kernel refuses.
 */
export function perfEventOpen(attr: PerfEventAttr, pid: number, cpu: number, what: string): number {
  const buf = new Uint8Array(ATTR_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, attr.type, true);
  v.setUint32(4, ATTR_SIZE, true);
  v.setBigUint64(8, attr.config, true);
  v.setBigUint64(16, attr.sample ?? 1n, true);
  // flags bitfield: bit 10 = freq
  v.setBigUint64(40, attr.freq ? 1n << 10n : 0n, true);
  v.setBigUint64(56, attr.config1 ?? 0n, true);
  v.setBigUint64(64, attr.config2 ?? 0n, true);
  const ptr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  const fd = Number(
    libc().syscall(SYS_PERF_EVENT_OPEN, ptr, BigInt(pid), BigInt(cpu), -1n, PERF_FLAG_FD_CLOEXEC),
  );
  if (fd < 0) throw new BpfError(`open perf event for ${what}`, errno());
  return fd;
}
