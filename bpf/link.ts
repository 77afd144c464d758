/**
 * Links: a loaded program attached to a kernel hook. Closing a link detaches the program; the
 * kernel also detaches when the owning process dies, so a killed runner leaves nothing behind.
 *
 * @module
 */
import { closeFd, cstr, libbpf } from "./ffi.ts";
import { check, NotSupportedError } from "./errors.ts";
import { perfEventOpen, PerfType, SoftwareEvent } from "./perf_event.ts";
import { AttachType, type Program } from "./program.ts";
import { requireFentry, requireKprobes, requireUprobes } from "./features.ts";

/** An attachment; owns the link fd and, for perf-based hooks, the perf event fds. */
export class Link implements Disposable {
  readonly fd: number;
  readonly description: string;
  readonly #perfFds: number[];
  #closed = false;

  constructor(fd: number, description: string, perfFds: number[] = []) {
    this.fd = fd;
    this.description = description;
    this.#perfFds = perfFds;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
    this.#perfFds.forEach(closeFd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A group of links closed together (one per CPU for sampling events). */
export class LinkGroup implements Disposable {
  constructor(readonly links: Link[]) {}
  close(): void {
    this.links.forEach((l) => l.close());
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

function perfLink(prog: Program, perfFd: number, what: string): Link {
  try {
    const fd = check(
      libbpf().bpf_link_create(prog.fd, perfFd, AttachType.perf_event, null),
      `attach ${prog.probe} to ${what}`,
    );
    return new Link(fd, what, [perfFd]);
  } catch (e) {
    closeFd(perfFd);
    throw e;
  }
}

/** Attaches a `tracepoint` program to the tracepoint with tracefs id `id`. */
export function attachTracepoint(prog: Program, id: number, name: string): Link {
  const pfd = perfEventOpen(
    { type: PerfType.tracepoint, config: BigInt(id) },
    -1,
    0,
    `tracepoint ${name}`,
  );
  return perfLink(prog, pfd, `tracepoint ${name}`);
}

/** Attaches a `raw_tracepoint` program to the raw tracepoint `name` (e.g. "sched_switch"). */
export function attachRawTracepoint(prog: Program, name: string): Link {
  const fd = check(
    libbpf().bpf_raw_tracepoint_open(cstr(name), prog.fd),
    `attach ${prog.probe} to raw tracepoint ${name}`,
  );
  return new Link(fd, `raw_tracepoint ${name}`);
}

/**
 * Attaches a `tp_btf` program (a `tracing` program loaded against `btf_trace_<name>`, see
 * `btfTracepointId`) to its raw tracepoint `name`.
 */
export function attachBtfTracepoint(prog: Program, name: string): Link {
  const fd = check(
    libbpf().bpf_raw_tracepoint_open(null, prog.fd),
    `attach ${prog.probe} to BTF tracepoint ${name}`,
  );
  return new Link(fd, `tp_btf ${name}`);
}

function pmuType(pmu: string): number {
  return Number(Deno.readTextFileSync(`/sys/bus/event_source/devices/${pmu}/type`).trim());
}

/** Where the uprobe PMU's config takes a semaphore's offset ("config:32-63"). */
function refCounterShift(): bigint {
  const text = Deno.readTextFileSync("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset");
  return BigInt(text.trim().split(":")[1].split("-")[0]);
}

/** The config bit that turns a kprobe/uprobe PMU event into a return probe. */
function retprobeBit(pmu: string): bigint {
  const text = Deno.readTextFileSync(`/sys/bus/event_source/devices/${pmu}/format/retprobe`);
  return 1n << BigInt(text.trim().split(":")[1]);
}

/**
 * Attaches a `kprobe`-type program to a uprobe (or uretprobe) at `offset` in the file `path`,
 * for process `pid` (-1: every process). `semaphore`: the file offset of a USDT semaphore,
 * which the kernel increments in every process while the probe is attached (4.20+).
 */
export function attachUprobe(
  prog: Program,
  path: string,
  offset: bigint,
  retprobe: boolean,
  pid = -1,
  semaphore = 0n,
): Link {
  requireUprobes();
  const pathBuf = cstr(path);
  const what = `${retprobe ? "uretprobe" : "uprobe"} ${path}:0x${offset.toString(16)}`;
  const pfd = perfEventOpen(
    {
      type: pmuType("uprobe"),
      config: (retprobe ? retprobeBit("uprobe") : 0n) |
        (semaphore ? semaphore << refCounterShift() : 0n),
      config1: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(pathBuf))),
      config2: offset,
    },
    pid,
    pid === -1 ? 0 : -1,
    what,
  );
  return perfLink(prog, pfd, what);
}

/** Attaches a `kprobe` program to a kernel function; a clear error where kprobes are missing. */
export function attachKprobe(prog: Program, func: string, retprobe: boolean): Link {
  requireKprobes();
  const symbol = cstr(func);
  const what = `${retprobe ? "kretprobe" : "kprobe"} ${func}`;
  const pfd = perfEventOpen(
    {
      type: pmuType("kprobe"),
      config: retprobe ? retprobeBit("kprobe") : 0n,
      config1: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(symbol))),
    },
    -1,
    0,
    what,
  );
  return perfLink(prog, pfd, what);
}

/** Attaches a `tracing` program (fentry/fexit) loaded against a kernel function's BTF id. */
export function attachTracing(prog: Program, func: string, exit: boolean): Link {
  requireFentry();
  const type = exit ? AttachType.trace_fexit : AttachType.trace_fentry;
  const fd = libbpf().bpf_link_create(prog.fd, 0, type, null);
  if (fd < 0) {
    throw new NotSupportedError(exit ? "fexit" : "fentry", `attaching to ${func} failed: ${-fd}`);
  }
  return new Link(fd, `${exit ? "fexit" : "fentry"} ${func}`);
}

/** Attaches a `perf_event` program to a cpu-clock sampler at `hz` on every online CPU. */
export function attachCpuClock(prog: Program, hz: number, cpus: number[]): LinkGroup {
  const links: Link[] = [];
  try {
    for (const cpu of cpus) {
      const what = `cpu-clock ${hz} Hz on cpu ${cpu}`;
      const pfd = perfEventOpen(
        {
          type: PerfType.software,
          config: BigInt(SoftwareEvent.cpu_clock),
          sample: BigInt(hz),
          freq: true,
        },
        -1,
        cpu,
        what,
      );
      links.push(perfLink(prog, pfd, what));
    }
  } catch (e) {
    links.forEach((l) => l.close());
    throw e;
  }
  return new LinkGroup(links);
}
