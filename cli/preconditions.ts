/**
 * What tracing needs from the machine, checked before anything else so that a missing piece is
 * one line saying what to do, not an errno deep in a load.
 *
 * @module
 */
import { pathExists } from "../system/files.ts";

/** A missing precondition and its remedy, in one line. */
export interface Missing {
  what: string;
  remedy: string;
}

/** Effective capabilities of this process, from /proc/self/status. */
function capabilities(): bigint {
  const line = Deno.readTextFileSync("/proc/self/status").split("\n")
    .find((l) => l.startsWith("CapEff:"));
  return line ? BigInt(`0x${line.split(/\s+/)[1]}`) : 0n;
}

const CAP_SYS_ADMIN = 21n, CAP_PERFMON = 38n, CAP_BPF = 39n;

/** Every precondition that does not hold on this machine. */
export function missingPreconditions(): Missing[] {
  const missing: Missing[] = [];
  const caps = capabilities();
  const has = (cap: bigint) => ((caps >> cap) & 1n) === 1n;
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) {
    missing.push({
      what: "not root, and without CAP_BPF and CAP_PERFMON",
      remedy: "run as root (sudo probe ...) or grant cap_bpf,cap_perfmon to deno",
    });
  }
  try {
    // Left open: the session's own dlopen then finds it loaded (closing it unmapped libbpf,
    // libelf and libz, and mapping them again cost 0.3 ms of probe's start).
    Deno.dlopen("libbpf.so.1", {});
  } catch {
    missing.push({ what: "libbpf.so.1 is missing", remedy: "apt-get install libbpf1" });
  }
  if (!pathExists("/sys/kernel/btf/vmlinux")) {
    missing.push({
      what: "the kernel has no BTF (/sys/kernel/btf/vmlinux)",
      remedy: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's are)",
    });
  }
  if (
    !pathExists("/sys/kernel/tracing/events") && !pathExists("/sys/kernel/debug/tracing/events")
  ) {
    missing.push(
      deniedByMode("/sys/kernel/tracing/events")
        ? {
          // Root's, mode 0700: another user reads it with CAP_DAC_READ_SEARCH.
          what: "tracefs (/sys/kernel/tracing) is not readable: not root, and without " +
            "CAP_DAC_READ_SEARCH",
          remedy: "run as root (sudo probe ...) or grant cap_dac_read_search too",
        }
        : {
          what: "tracefs is not mounted",
          remedy: "mount -t tracefs nodev /sys/kernel/tracing",
        },
    );
  }
  return missing;
}

/** Whether `path` is there but this user may not look at it. */
function deniedByMode(path: string): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch (e) {
    return e instanceof Deno.errors.PermissionDenied;
  }
}
