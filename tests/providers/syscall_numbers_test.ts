/**
 * The syscall number tables (runtime/providers/syscall_numbers.ts) that syscount and syslat name
 * `raw_syscalls` ids with: one per architecture, an error naming an architecture without one,
 * and the generator that reads them from the kernel's headers.
 */
import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import {
  syscallName,
  syscallNames,
  UnknownArchitectureError,
} from "../../runtime/providers/syscall_numbers.ts";
import {
  ARM64_DEFINES,
  parseGenericUnistd,
  parseSyscallNumbers,
} from "../../tools/gen_syscall_numbers.ts";

Deno.test("syscallName: x86_64 numbers are read 0, write 1, getppid 110; unknown ones say so", () => {
  const x86 = syscallNames("x86_64");
  equal([x86[0], x86[1], x86[2], x86[110]], ["read", "write", "open", "getppid"]);
  equal(syscallName(59, "x86_64"), "execve");
  equal(syscallName(231, "x86_64"), "exit_group");
  equal(syscallName(100000, "x86_64"), "syscall_100000");
  equal(syscallName(-1, "x86_64"), "syscall_-1");
});

Deno.test("syscallName: aarch64 has the generic table: read 63, openat 56, getppid 173, no open", () => {
  const arm = syscallNames("aarch64");
  equal(arm[0], "io_setup");
  equal(arm[25], "fcntl"); // __NR3264_fcntl under its 64-bit name
  equal(arm[38], "renameat"); // __ARCH_WANT_RENAMEAT
  equal([arm[56], arm[57], arm[63], arm[64]], ["openat", "close", "read", "write"]);
  equal([arm[79], arm[80]], ["newfstatat", "fstat"]); // __ARCH_WANT_NEW_STAT
  equal(arm[84], "sync_file_range"); // not sync_file_range2
  equal([arm[94], arm[163], arm[173]], ["exit_group", "getrlimit", "getppid"]);
  equal([arm[220], arm[221], arm[222]], ["clone", "execve", "mmap"]);
  equal([arm[435], arm[447]], ["clone3", "memfd_secret"]);
  ok(!Object.values(arm).includes("open"), "aarch64 has openat only");
  ok(!Object.values(arm).includes("syscalls"), "__NR_syscalls is a count, not a syscall");
});

Deno.test("syscallName: this machine's architecture is the default", () => {
  equal(syscallName(0), syscallName(0, Deno.build.arch));
  equal(syscallNames(), syscallNames(Deno.build.arch));
});

Deno.test("syscallName: an architecture without a table is one line naming it", () => {
  for (const arch of ["riscv64", "", "toString", "__proto__"]) {
    throws(() => syscallName(0, arch), (e: Error) => {
      ok(e instanceof UnknownArchitectureError, String(e));
      equal(e.arch, arch);
      equal(
        e.message,
        `tsprobe does not know the system call numbers of ${arch} (it knows x86_64, aarch64), ` +
          "so it cannot name syscalls by number here",
      );
      return true;
    });
  }
});

Deno.test("gen_syscall_numbers reads unistd_64.h and syscall_64.tbl alike", () => {
  const header = "#ifndef _ASM\n#define __NR_read 0\n#define __NR_write 1\n#endif\n";
  equal([...parseSyscallNumbers(header)], [[0, "read"], [1, "write"]]);
  const table = "# comment\n0\tcommon\tread\t\tsys_read\n512\tx32\trt_sigaction\tcompat\n" +
    "13\t64\trt_sigaction\tsys_rt_sigaction\n";
  equal([...parseSyscallNumbers(table)], [[0, "read"], [13, "rt_sigaction"]]);
});

Deno.test("gen_syscall_numbers evaluates asm-generic/unistd.h's conditions as cpp would", () => {
  const header = [
    "#define __NR_io_setup 0",
    "#ifdef __ARCH_WANT_RENAMEAT /* comment */",
    "#define __NR_renameat 38",
    "#endif",
    "#ifdef __ARCH_WANT_SYNC_FILE_RANGE2",
    "#define __NR_sync_file_range2 84",
    "#else",
    "#define __NR_sync_file_range 84",
    "#endif",
    "#if defined(__ARCH_WANT_TIME32_SYSCALLS) || __BITS_PER_LONG != 32",
    "#define __NR_io_getevents 4",
    "#endif",
    "#define __NR3264_fcntl 25",
    "__SC_COMP_3264(__NR3264_fcntl, sys_fcntl64, sys_fcntl, \\",
    "  compat_sys_fcntl64)",
    "#undef __NR_syscalls",
    "#define __NR_syscalls 451",
    "#if __BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)",
    "#define __NR_fcntl __NR3264_fcntl",
    "#ifdef __NR3264_stat",
    "#define __NR_stat __NR3264_stat",
    "#endif",
    "#else",
    "#define __NR_fcntl64 __NR3264_fcntl",
    "#endif",
  ].join("\n");
  equal(
    [...parseGenericUnistd(header, ["__ARCH_WANT_RENAMEAT"])].sort(([a], [b]) => a - b),
    [[0, "io_setup"], [4, "io_getevents"], [25, "fcntl"], [38, "renameat"], [
      84,
      "sync_file_range",
    ]],
  );
});

/** `path`'s text, or undefined where linux-libc-dev is not installed. */
function installed(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

Deno.test("the x86_64 table holds every number of this machine's unistd_64.h, when installed", () => {
  const header = installed("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");
  if (header === undefined) return; // The committed table is all there is (checked above).
  const numbers = parseSyscallNumbers(header);
  ok(numbers.size > 300, `${numbers.size} syscalls in the header`);
  for (const [nr, name] of numbers) equal(syscallNames("x86_64")[nr], name, `syscall ${nr}`);
});

Deno.test("the aarch64 table holds every number of this machine's asm-generic/unistd.h", () => {
  const header = installed("/usr/include/asm-generic/unistd.h");
  if (header === undefined) return;
  const numbers = parseGenericUnistd(header, ARM64_DEFINES);
  ok(numbers.size > 300, `${numbers.size} syscalls in the header`);
  for (const [nr, name] of numbers) equal(syscallNames("aarch64")[nr], name, `syscall ${nr}`);
});
