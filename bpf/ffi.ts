/**
 * The foreign symbols of libbpf and libc: the one module that calls `Deno.dlopen`.
 *
 * Everything above this layer talks to the kernel through {@link libbpf} and {@link libc}. Both
 * are opened on first use so that pure modules (the assembler, the tracefs parser) can be tested
 * without either library.
 *
 * @module
 */

/** libbpf's low-level (`bpf.h`) and BTF (`btf.h`) entry points used by the runtime. */
const LIBBPF_SYMBOLS = {
  libbpf_major_version: { parameters: [], result: "u32" },
  libbpf_minor_version: { parameters: [], result: "u32" },
  bpf_map_create: {
    parameters: ["u32", "buffer", "u32", "u32", "u32", "buffer"],
    result: "i32",
  },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  bpf_map_get_next_key: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_lookup_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  bpf_map_lookup_and_delete_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  bpf_prog_load: {
    parameters: ["u32", "buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
  },
  bpf_btf_load: { parameters: ["buffer", "usize", "pointer"], result: "i32" },
  bpf_link_create: { parameters: ["i32", "i32", "u32", "buffer"], result: "i32" },
  bpf_raw_tracepoint_open: { parameters: ["buffer", "i32"], result: "i32" },
  bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  btf__load_vmlinux_btf: { parameters: [], result: "pointer" },
  btf__free: { parameters: ["pointer"], result: "void" },
  btf__type_cnt: { parameters: ["pointer"], result: "u32" },
  btf__type_by_id: { parameters: ["pointer", "u32"], result: "pointer" },
  btf__name_by_offset: { parameters: ["pointer", "u32"], result: "pointer" },
  btf__find_by_name_kind: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  btf__resolve_size: { parameters: ["pointer", "u32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** libc calls for the ring buffer (mmap, epoll) and perf events (through `syscall`). */
const LIBC_SYMBOLS = {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  epoll_wait_now: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  syscall: {
    parameters: ["i64", "i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  sysconf: { parameters: ["i32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Oldest libbpf whose `bpf_prog_load`/`bpf_map_create` option layouts this module assumes. */
const MIN_LIBBPF = [1, 0] as const;

/** Raised when libbpf cannot be opened or is too old; says how to install it. */
export class LibbpfUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `libbpf is not usable: ${detail}. Install it with 'apt-get install libbpf1' ` +
        `(or set TSPROBE_LIBBPF to the path of libbpf.so.1)`,
    );
    this.name = "LibbpfUnavailableError";
  }
}

type Symbols<S extends Deno.ForeignLibraryInterface> = Deno.DynamicLibrary<S>["symbols"];

let bpfLib: Symbols<typeof LIBBPF_SYMBOLS> | undefined;
let cLib: Symbols<typeof LIBC_SYMBOLS> | undefined;

/**
 * The `symbols` of library `path` (which must open), each bound on its first use: Deno
 * compiles a call stub for every symbol it is given (0.1-0.3 ms each), and a run that only
 * loads and attaches a few programs calls a few of them.
 */
function lazySymbols<S extends Deno.ForeignLibraryInterface>(path: string, symbols: S): Symbols<S> {
  const bound = {} as Symbols<S>;
  for (const name of Object.keys(symbols)) {
    // Once bound, a plain writable property, as dlopen's symbols are (tests wrap some).
    const set = (value: unknown) =>
      Object.defineProperty(bound, name, { value, writable: true, enumerable: true });
    Object.defineProperty(bound, name, {
      configurable: true,
      enumerable: true,
      get: () => set(Deno.dlopen(path, { [name]: symbols[name] }).symbols[name])[name],
      set,
    });
  }
  return bound;
}

/** libbpf's symbols, opened once; throws {@link LibbpfUnavailableError} when missing or < 1.0. */
export function libbpf(): Symbols<typeof LIBBPF_SYMBOLS> {
  if (bpfLib) return bpfLib;
  const path = Deno.env.get("TSPROBE_LIBBPF") ?? "libbpf.so.1";
  try {
    Deno.dlopen(path, {});
  } catch (e) {
    throw new LibbpfUnavailableError(`cannot open ${path} (${(e as Error).message})`);
  }
  const symbols = lazySymbols(path, LIBBPF_SYMBOLS);
  const major = symbols.libbpf_major_version();
  const minor = symbols.libbpf_minor_version();
  if (major < MIN_LIBBPF[0] || (major === MIN_LIBBPF[0] && minor < MIN_LIBBPF[1])) {
    throw new LibbpfUnavailableError(`found version ${major}.${minor}, need >= 1.0`);
  }
  bpfLib = symbols;
  return bpfLib;
}

/** The version of the loaded libbpf, as "major.minor". */
export function libbpfVersion(): string {
  const s = libbpf();
  return `${s.libbpf_major_version()}.${s.libbpf_minor_version()}`;
}

/** libc's symbols, opened once. */
export function libc(): Symbols<typeof LIBC_SYMBOLS> {
  cLib ??= lazySymbols("libc.so.6", LIBC_SYMBOLS);
  return cLib;
}

/** The calling thread's errno, read right after a failed libc call. */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** The C library's text for an errno value. */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${code}`;
}

/** Closes a kernel object's fd (map, program, link, perf event, epoll). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** A NUL-terminated copy of a string, for `const char *` parameters. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
