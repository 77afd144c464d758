/**
 * Attaching programs on the running kernel: tracepoints, raw tracepoints, uprobes and
 * uretprobes (through system/elf.ts), cpu-clock sampling, and the kprobe "not supported" path.
 *
 * Counting tests filter on the pid of a perl child that this file spawns, so other activity on
 * the machine cannot change the counts. The child blocks reading stdin until the probe is
 * attached; then the test closes its stdin and the child makes exactly N calls. No assertion
 * depends on timing.
 *
 * Needs root, libbpf and perl; x86_64 (syscall numbers and pt_regs offsets).
 */
import { onlineCpus } from "../../system/cpus.ts";
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import * as a from "../../bpf/asm/mod.ts";
import { BpfMap } from "../../bpf/map.ts";
import { AttachType, Program, type ProgramSpec, type ProgramType } from "../../bpf/program.ts";
import {
  attachCpuClock,
  attachKprobe,
  attachRawTracepoint,
  attachTracepoint,
  attachTracing,
  attachUprobe,
} from "../../bpf/link.ts";
import { Btf } from "../../bpf/btf.ts";
import { kernelTest } from "../fixtures/kernel.ts";
import { NotSupportedError } from "../../bpf/errors.ts";
import { readFormatSync } from "../../system/tracefs.ts";
import { countAndReturn, exists } from "../fixtures/bpf.ts";
import {
  ElfError,
  listSymbols,
  resolveLibrary,
  resolveSymbol,
  SymbolNotFoundError,
} from "../../system/elf.ts";

const { R0, R1, R6 } = a;

const PREFIX = `l${Deno.pid.toString(36)}_`;
const SYS_GETPPID = 110;
/** `offsetof(struct pt_regs, ax)` on x86_64: a uretprobe's return value. */
const PT_REGS_AX = 80;
const N = 1000;

/** A perl child that waits for EOF on stdin, then runs `body`. */
class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  #released = false;

  constructor(body: string) {
    this.process = new Deno.Command("perl", {
      args: ["-e", `my @wait = <STDIN>; ${body}`],
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Lets the child run `body` and waits for it to exit successfully. */
  async run(): Promise<void> {
    this.#released = true;
    await this.process.stdin.close();
    const status = await this.process.status;
    assert(status.success, `perl exited with ${status.code}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#released) {
      this.process.kill("SIGKILL");
      await this.process.stdin.close().catch(() => {});
    }
    await this.process.status;
  }
}

/** A per-CPU u64 counter, key 0. */
function counter(name: string): BpfMap {
  return BpfMap.create({
    name: `${PREFIX}${name}`,
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
}

function total(map: BpfMap): bigint {
  return BpfMap.sumPerCpu(map.lookup(new Uint8Array(4))!, 8);
}

/**
 * A program that adds one to `counts[0]` when the current process is `pid` (if given) and the
 * `filter` instructions (run with the context in R6) fall through rather than jump to "out".
 */
function counting(
  name: string,
  type: ProgramType,
  counts: BpfMap,
  pid?: number,
  filter: a.Item[] = [],
  tracing?: Pick<ProgramSpec, "expectedAttachType" | "attachBtfId">,
): Program {
  const pidCheck = pid === undefined ? [] : [
    a.call("get_current_pid_tgid"),
    a.alu64("RSH", R0, a.imm(32)), // the tgid: the process id
    a.jmp("JNE", R0, a.imm(pid), "out"),
  ];
  return Program.load({
    name: `${PREFIX}${name}`,
    type,
    probe: `test:${name}`,
    ...tracing,
    maps: new Map([["counts", counts]]),
    instructions: [
      a.mov64(R6, R1),
      ...pidCheck,
      ...filter,
      ...countAndReturn("counts"),
    ],
  });
}

Deno.test("attachTracepoint() counts exactly the child's getppid syscalls", async () => {
  using counts = counter("tp");
  await using child = new Child(`syscall(${SYS_GETPPID}) for 1..${N};`);
  using prog = counting("tp", "tracepoint", counts, child.pid);
  const tp = readFormatSync("syscalls", "sys_enter_getppid");
  const link = attachTracepoint(prog, tp.id, "syscalls:sys_enter_getppid");
  try {
    assert(link.description.includes("sys_enter_getppid"));
    await child.run();
  } finally {
    link.close();
  }
  assertEquals(total(counts), BigInt(N));
});

Deno.test("attachRawTracepoint() on sys_enter sees each of the child's getppid calls", async () => {
  using counts = counter("rawtp");
  await using child = new Child(`syscall(${SYS_GETPPID}) for 1..${N};`);
  // The context is `u64 args[]`: args[0] = struct pt_regs *, args[1] = the syscall number.
  using prog = counting("rawtp", "raw_tracepoint", counts, child.pid, [
    a.ldx("DW", R1, R6, 8),
    a.jmp("JNE", R1, a.imm(SYS_GETPPID), "out"),
  ]);
  const link = attachRawTracepoint(prog, "sys_enter");
  try {
    assertEquals(link.description, "raw_tracepoint sys_enter");
    await child.run();
  } finally {
    link.close();
  }
  assertEquals(total(counts), BigInt(N));
});

Deno.test("resolveLibrary() finds libc and resolveSymbol() its getppid", () => {
  const libc = resolveLibrary("c");
  assert(libc.includes("libc.so."), libc);
  assertEquals(resolveLibrary("libc.so.6"), libc);
  assertEquals(resolveLibrary("libc"), libc);
  const offset = resolveSymbol(libc, "getppid");
  assert(offset > 0n);
  // A versioned name resolves to the plain symbol.
  assertEquals(resolveSymbol(libc, "malloc@@GLIBC_2.2.5"), resolveSymbol(libc, "malloc"));
  const names = listSymbols(libc);
  assert(names.includes("getppid") && names.includes("malloc"));
  assert(names.every((n) => !n.includes("@")), "names are plain");
});

Deno.test("resolveSymbol() of a misspelled function suggests close names in one line", () => {
  const libc = resolveLibrary("c");
  throws(() => resolveSymbol(libc, "getpdid"), (err) => {
    assert(err instanceof SymbolNotFoundError);
    assert(err.suggestions.length >= 1 && err.suggestions.length <= 3, `${err.suggestions}`);
    assert(err.suggestions.includes("getpid"), `${err.suggestions}`);
    assert(err.message.includes("'getpdid'") && err.message.includes(libc), err.message);
    assert(err.message.includes("did you mean"), err.message);
    assert(!err.message.includes("\n"), "one line");
    return true;
  });
  throws(() => resolveSymbol("/etc/hostname", "main"), ElfError);
  throws(() => resolveSymbol("/nonexistent/file", "main"), ElfError);
});

Deno.test("attachUprobe() counts exactly the child's calls of libc getppid", async () => {
  const libc = resolveLibrary("c");
  const offset = resolveSymbol(libc, "getppid");
  using counts = counter("up");
  await using child = new Child(`getppid() for 1..${N};`);
  using prog = counting("up", "kprobe", counts, child.pid);
  const link = attachUprobe(prog, libc, offset, false, child.pid);
  try {
    assert(link.description.startsWith("uprobe "), link.description);
    await child.run();
  } finally {
    link.close();
  }
  assertEquals(total(counts), BigInt(N));
});

Deno.test("attachUprobe() as a uretprobe sees each getppid return this process's pid", async () => {
  const libc = resolveLibrary("c");
  const offset = resolveSymbol(libc, "getppid");
  using counts = counter("uret");
  await using child = new Child(`getppid() for 1..${N};`);
  // Counts only returns whose value (rax) is the child's parent: this Deno process.
  using prog = counting("uret", "kprobe", counts, child.pid, [
    a.ldx("DW", R1, R6, PT_REGS_AX),
    a.jmp("JNE", R1, a.imm(Deno.pid), "out"),
  ]);
  // Every process (pid -1): the program's own pid check does the filtering.
  const link = attachUprobe(prog, libc, offset, true);
  try {
    assert(link.description.startsWith("uretprobe "), link.description);
    await child.run();
  } finally {
    link.close();
  }
  assertEquals(total(counts), BigInt(N));
});

Deno.test("attachCpuClock() samples at 99 Hz on every online CPU", async () => {
  using counts = counter("clock");
  using prog = counting("clock", "perf_event", counts);
  const cpus = onlineCpus();
  const group = attachCpuClock(prog, 99, cpus);
  try {
    assertEquals(group.links.length, cpus.length);
    // Half a second gives ~50 samples per CPU; wait longer only on a starved machine.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 90 && total(counts) === 0n; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    group.close();
  }
  assert(total(counts) > 0n, "no cpu-clock samples");
});

Deno.test("attachKprobe() throws NotSupportedError where the kernel lacks kprobes", () => {
  using counts = counter("kp");
  using prog = counting("kp", "kprobe", counts);
  if (exists("/sys/bus/event_source/devices/kprobe")) {
    // A kernel with kprobes: attaching must work.
    attachKprobe(prog, "vfs_read", false).close();
    return;
  }
  try {
    attachKprobe(prog, "vfs_read", false).close();
    assert(false, "attachKprobe() succeeded without a kprobe PMU");
  } catch (e) {
    assert(e instanceof NotSupportedError, String(e));
    assertEquals(e.feature, "kprobe");
    assert(e.message.includes("not supported by this kernel"), e.message);
  }
});

// kprobes and fentry/fexit: on kernels that have them (Debian's 6.1 in the test matrix), exact
// counts of a child's getppid calls through the syscall's kernel entry point.
const GETPPID_FUNC = "__x64_sys_getppid";

/** Runs a child doing `body` with `prog` attached by `attach`; returns what it counted. */
async function countInChild(
  name: string,
  body: string,
  attach: (counts: BpfMap, pid: number) => { prog: Program; link: { close(): void } },
): Promise<bigint> {
  using counts = counter(name);
  await using child = new Child(body);
  const { prog, link } = attach(counts, child.pid);
  try {
    await child.run();
  } finally {
    link.close();
    prog.close();
  }
  return total(counts);
}

const GETPPIDS = `syscall(${SYS_GETPPID}) for 1..${N};`;

kernelTest(["kprobes"], "attachKprobe() counts exactly the child's getppid calls", async () => {
  const n = await countInChild("kp", GETPPIDS, (counts, pid) => {
    const prog = counting("kp", "kprobe", counts, pid);
    return { prog, link: attachKprobe(prog, GETPPID_FUNC, false) };
  });
  assertEquals(n, BigInt(N));
});

kernelTest(
  ["kprobes"],
  "attachKprobe() as a kretprobe sees each getppid return the parent",
  async () => {
    const n = await countInChild("kret", GETPPIDS, (counts, pid) => {
      // Counts returns whose value (rax) is the child's parent: this Deno process.
      const prog = counting("kret", "kprobe", counts, pid, [
        a.ldx("DW", R1, R6, PT_REGS_AX),
        a.jmp("JNE", R1, a.imm(Deno.pid), "out"),
      ]);
      return { prog, link: attachKprobe(prog, GETPPID_FUNC, true) };
    });
    assertEquals(n, BigInt(N));
  },
);

/** A tracing program's load settings for `func` (fentry or fexit). */
function tracingSpec(func: string, exit: boolean) {
  const f = Btf.vmlinux().find(func, "func");
  assert(f, `${func} is in the kernel's BTF`);
  return {
    expectedAttachType: exit ? AttachType.trace_fexit : AttachType.trace_fentry,
    attachBtfId: f.id,
  };
}

/** A `read` size no other read of the child makes: fentry/fexit count only these. */
const READ_SIZE = 4097;

/** The child's reads: READ_SIZE bytes from /dev/zero, N times. */
const READS = `open(my $z, "<", "/dev/zero") or die; sysread($z, my $b, ${READ_SIZE}) for 1..${N};`;

// vfs_read(file, buf, count, pos): in BTF on every kernel (the syscall wrappers are not on 6.1).
kernelTest(["fentry"], "attachTracing() as fentry counts exactly the child's reads", async () => {
  const n = await countInChild("fent", READS, (counts, pid) => {
    // fentry's context: the function's arguments, one u64 each.
    const prog = counting("fent", "tracing", counts, pid, [
      a.ldx("DW", R1, R6, 16),
      a.jmp("JNE", R1, a.imm(READ_SIZE), "out"),
    ], tracingSpec("vfs_read", false));
    return { prog, link: attachTracing(prog, "vfs_read", false) };
  });
  assertEquals(n, BigInt(N));
});

kernelTest(
  ["fentry"],
  "attachTracing() as fexit sees each of the child's reads return its size",
  async () => {
    const n = await countInChild("fexit", READS, (counts, pid) => {
      // fexit's context: the four arguments, then the return value.
      const prog = counting("fexit", "tracing", counts, pid, [
        a.ldx("DW", R1, R6, 32),
        a.jmp("JNE", R1, a.imm(READ_SIZE), "out"),
      ], tracingSpec("vfs_read", true));
      return { prog, link: attachTracing(prog, "vfs_read", true) };
    });
    assertEquals(n, BigInt(N));
  },
);
