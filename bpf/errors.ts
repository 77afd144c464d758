/**
 * Typed errors of the kernel-object layer. Each message says what failed and what to do.
 *
 * @module
 */
import { strerror } from "./ffi.ts";

/** `EEXIST`: what a map update with `UpdateFlag.noexist` returns for a key already there. */
export const EEXIST = 17;

/** Errno names for the codes the runtime explains. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};

/** A failed call into the kernel, with its errno. */
export class BpfError extends Error {
  /** The positive errno value. */
  readonly errno: number;
  /** What was being done, e.g. "create map events". */
  readonly operation: string;
  /** `operation` failed with `errno`; `hint` says what to do, when something can be done. */
  constructor(operation: string, errno: number, hint?: string) {
    const name = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    const why = errno === 1 || errno === 13
      ? " (BPF needs root or CAP_BPF+CAP_PERFMON: run as root)"
      : "";
    super(
      `Cannot ${operation}: ${strerror(errno)} (${name})${why}${hint ? `. ${hint}` : ""}`,
    );
    this.name = "BpfError";
    this.errno = errno;
    this.operation = operation;
  }
}

/** A kernel feature that this kernel lacks (a program type, attach type or helper). */
export class NotSupportedError extends Error {
  /** The feature, as users name it (e.g. "kprobe"). */
  readonly feature: string;
  /** `feature` is missing; `detail` says how that was found, `remedy` what to do instead. */
  constructor(feature: string, detail: string, remedy = "use a tracepoint instead") {
    super(`${feature} is not supported by this kernel (${detail}); ${remedy}`);
    this.name = "NotSupportedError";
    this.feature = feature;
  }
}

/** Throws a {@link BpfError} when a libbpf call returned a negative errno. */
export function check(result: number, operation: string, hint?: string): number {
  if (result < 0) throw new BpfError(operation, -result, hint);
  return result;
}
