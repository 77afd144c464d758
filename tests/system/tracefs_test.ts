/**
 * Tests of the tracefs format parser against this machine's real format files, plus
 * handwritten text for the cases the running kernel may not show.
 */
import {
  listTracepoints,
  listTracepointsSync,
  parseFormat,
  ProbeNotFoundError,
  readFormat,
  readFormatSync,
  TracefsError,
  tracefsRoot,
  type TracepointField,
  type TracepointFormat,
} from "../../system/tracefs.ts";
import { closeMatches, editDistance } from "../../system/suggest.ts";

// Local helpers: the repo has no dependencies, and a test should not add one.
function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

function assertEquals(actual: unknown, expected: unknown, what = "value"): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assertThrows<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected ${type.name}, got ${error}`);
  }
  throw new Error(`expected ${type.name} to be thrown`);
}

async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected ${type.name}, got ${error}`);
  }
  throw new Error(`expected ${type.name} to be thrown`);
}

function field(format: TracepointFormat, name: string): TracepointField {
  const found = format.fields.find((f) => f.name === name);
  assert(found, `${format.category}:${format.name} has no field ${name}`);
  return found;
}

/** Compares the listed properties only, so optional ones absent from `expected` are not checked. */
function assertField(actual: TracepointField, expected: Partial<TracepointField>): void {
  for (const [key, value] of Object.entries(expected)) {
    assertEquals(actual[key as keyof TracepointField], value, `${actual.name}.${key}`);
  }
}

const COMMON_FIELDS = ["common_type", "common_flags", "common_preempt_count", "common_pid"];

function assertCommonHeader(format: TracepointFormat): void {
  assertEquals(format.fields.slice(0, 4).map((f) => f.name), COMMON_FIELDS, "common fields");
  assert(format.fields.slice(0, 4).every((f) => f.common && f.kind === "int"));
  assertField(field(format, "common_type"), { cType: "unsigned short", offset: 0, size: 2 });
  assertField(field(format, "common_pid"), { cType: "int", offset: 4, size: 4, signed: true });
  assert(format.fields.slice(4).every((f) => !f.common), "only common_ fields are common");
  assert(format.id > 0, "id is positive");
}

Deno.test("tracefsRoot finds a mounted tracefs with an events directory", () => {
  const root = tracefsRoot();
  assert(Deno.statSync(`${root}/events`).isDirectory);
  assertEquals(tracefsRoot(), root, "cached root");
});

Deno.test("readFormat parses syscalls:sys_enter_openat with filename as a pointer", async () => {
  const format = await readFormat("syscalls", "sys_enter_openat");
  assertEquals([format.category, format.name], ["syscalls", "sys_enter_openat"]);
  assertCommonHeader(format);
  assertField(field(format, "__syscall_nr"), {
    cType: "int",
    offset: 8,
    size: 4,
    signed: true,
    kind: "int",
  });
  assertField(field(format, "filename"), {
    cType: "const char *",
    offset: 24,
    size: 8,
    signed: false,
    dataLoc: false,
    common: false,
    kind: "pointer",
  });
  assertEquals(field(format, "filename").arrayLength, undefined, "filename.arrayLength");
  assertField(field(format, "mode"), { cType: "umode_t", kind: "int" });
  assertEquals(format.size, 48, "record size");
  const id = Number(Deno.readTextFileSync(`${tracefsRoot()}/events/syscalls/sys_enter_openat/id`));
  assertEquals(format.id, id, "id matches the id file");
});

Deno.test("readFormat parses block:block_rq_issue strings, data_loc and dev_t", async () => {
  const format = await readFormat("block", "block_rq_issue");
  assertCommonHeader(format);
  assertField(field(format, "dev"), { cType: "dev_t", size: 4, kind: "int", offset: 8 });
  assertField(field(format, "sector"), { cType: "sector_t", size: 8, kind: "int" });
  // RWBS_LEN differs between kernels: 8 bytes on 6.1, 10 on 6.18 (room for newer flags).
  const rwbsLength = field(format, "rwbs").size;
  assert(rwbsLength === 8 || rwbsLength === 10, `rwbs is ${rwbsLength} bytes`);
  assertField(field(format, "rwbs"), {
    cType: "char",
    size: rwbsLength,
    arrayLength: rwbsLength,
    kind: "string",
    dataLoc: false,
  });
  assertField(field(format, "comm"), { cType: "char", arrayLength: 16, kind: "string" });
  assertField(field(format, "cmd"), {
    cType: "char[]",
    size: 4,
    dataLoc: true,
    kind: "data_loc_string",
  });
  assertEquals(field(format, "cmd").arrayLength, undefined, "cmd.arrayLength");
  const cmd = field(format, "cmd");
  assertEquals(format.size, Math.max(...format.fields.map((f) => f.offset + f.size)), "size");
  assert(format.size >= cmd.offset + 4, "size covers the data_loc descriptor");
});

Deno.test("readFormat parses raw_syscalls:sys_enter args as an array of 6 unsigned long", async () => {
  const format = await readFormat("raw_syscalls", "sys_enter");
  assertCommonHeader(format);
  assertField(field(format, "id"), { cType: "long", offset: 8, size: 8, signed: true });
  assertField(field(format, "args"), {
    cType: "unsigned long",
    offset: 16,
    size: 48,
    arrayLength: 6,
    kind: "array",
    signed: false,
  });
  assertEquals(format.size, 64, "record size");
});

Deno.test("readFormat parses sched:sched_switch comm arrays and pid_t", async () => {
  const format = await readFormat("sched", "sched_switch");
  assertCommonHeader(format);
  assertField(field(format, "prev_comm"), {
    cType: "char",
    offset: 8,
    size: 16,
    arrayLength: 16,
    kind: "string",
  });
  assertField(field(format, "next_comm"), { cType: "char", arrayLength: 16, kind: "string" });
  assertField(field(format, "prev_pid"), { cType: "pid_t", size: 4, signed: true, kind: "int" });
  assertField(field(format, "prev_state"), { cType: "long", size: 8, kind: "int" });
});

Deno.test("readFormatSync matches readFormat", async () => {
  assertEquals(
    readFormatSync("sched", "sched_switch"),
    await readFormat("sched", "sched_switch"),
    "sync and async formats",
  );
});

const HANDWRITTEN = `name: demo_event
ID: 4242
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc u64[] phys_addrs;\toffset:8;\tsize:4;\tsigned:0;
\tfield:__data_loc unsigned int[] lengths;\toffset:12;\tsize:4;\tsigned:0;
\tfield:__data_loc cpumask_t cpumask;\toffset:16;\tsize:4;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:20;\tsize:4;\tsigned:0;
\tfield:__rel_loc char[] rel;\toffset:24;\tsize:4;\tsigned:0;
\tfield:u8 saddr[4];\toffset:28;\tsize:4;\tsigned:0;
\tfield:struct foo_pair pairs[2];\toffset:32;\tsize:32;\tsigned:0;
\tfield:struct mm_struct * mm;\toffset:64;\tsize:8;\tsigned:0;
\tfield:bool ok;\toffset:72;\tsize:1;\tsigned:0;
\tfield:enum migrate_mode mode;\toffset:76;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[sizeof(struct in6_addr)];\toffset:80;\tsize:16;\tsigned:0;
\tfield:unsigned long caller[2][3];\toffset:96;\tsize:48;\tsigned:0;
\tfield:unsigned long args[];\toffset:144;\tsize:0;\tsigned:0;

print fmt: "name=%s", __get_str(name)
`;

Deno.test("parseFormat handles data_loc arrays, struct arrays and unusual declarations", () => {
  const format = parseFormat("demo", "demo_event", HANDWRITTEN);
  assertEquals([format.category, format.name, format.id], ["demo", "demo_event", 4242]);
  assertEquals(format.fields.length, 17, "field count");
  assertEquals(format.size, 144, "size: the end of the last field");
  assertField(field(format, "phys_addrs"), {
    cType: "u64[]",
    size: 4,
    dataLoc: true,
    kind: "data_loc_array",
  });
  assertField(field(format, "lengths"), { cType: "unsigned int[]", kind: "data_loc_array" });
  assertField(field(format, "cpumask"), { cType: "cpumask_t", kind: "data_loc_array" });
  assertField(field(format, "name"), { cType: "char[]", kind: "data_loc_string" });
  assertEquals(field(format, "name").relLoc, undefined, "name.relLoc");
  assertField(field(format, "rel"), { dataLoc: true, relLoc: true, kind: "data_loc_string" });
  assertField(field(format, "saddr"), { cType: "u8", arrayLength: 4, kind: "array" });
  assertField(field(format, "pairs"), {
    cType: "struct foo_pair",
    arrayLength: 2,
    size: 32,
    kind: "array",
  });
  assertField(field(format, "mm"), { cType: "struct mm_struct *", kind: "pointer" });
  assertField(field(format, "ok"), { cType: "bool", size: 1, kind: "int" });
  assertField(field(format, "mode"), { cType: "enum migrate_mode", kind: "int" });
  assertField(field(format, "daddr"), { cType: "__u8", arrayLength: 16, kind: "array" });
  assertField(field(format, "caller"), { cType: "unsigned long", arrayLength: 6, kind: "array" });
  assertField(field(format, "args"), { arrayLength: 0, size: 0, kind: "array" });
});

Deno.test("parseFormat rejects a malformed field line and names it", () => {
  const text = HANDWRITTEN.replace("offset:72;", "offset:seventy-two;");
  const error = assertThrows(() => parseFormat("demo", "demo_event", text), TracefsError);
  assert(error.message.includes("demo:demo_event"), error.message);
  assert(error.message.includes("line 17"), error.message);
  assert(error.message.includes("field:bool ok;"), error.message);
  assert(!error.message.includes("\n"), "one line");
});

Deno.test("parseFormat rejects a field without a type, and text without an ID", () => {
  const noType = HANDWRITTEN.replace("field:bool ok;", "field:ok;");
  const error = assertThrows(() => parseFormat("demo", "demo_event", noType), TracefsError);
  assert(error.message.includes("field:ok;"), error.message);
  const noId = HANDWRITTEN.replace("ID: 4242\n", "");
  assertThrows(() => parseFormat("demo", "demo_event", noId), TracefsError);
  assertThrows(() => parseFormat("demo", "demo_event", "name: x\nID: 1\nformat:\n"), TracefsError);
});

Deno.test("parseFormat parses every format file of this kernel", async () => {
  const events = await listTracepoints();
  for (const { category, name } of events) {
    const format = await readFormat(category, name);
    assert(format.fields.length >= 4, `${category}:${name} has the common fields`);
    for (const f of format.fields) {
      if (f.kind === "string" || f.kind === "array") {
        assert(f.arrayLength !== undefined, `${category}:${name}.${f.name} arrayLength`);
      }
      if (f.dataLoc) assertEquals(f.size, 4, `${category}:${name}.${f.name} size`);
    }
  }
});

Deno.test("listTracepoints lists over 1000 sorted events with format files", async () => {
  const events = await listTracepoints();
  assert(events.length > 1000, `only ${events.length} tracepoints`);
  const names = events.map((e) => `${e.category}:${e.name}`);
  assert(names.includes("syscalls:sys_enter_openat"), "syscalls:sys_enter_openat listed");
  assert(names.includes("sched:sched_switch"), "sched:sched_switch listed");
  assert(!names.some((n) => /:(enable|filter)$/.test(n)), "control files are not events");
  assertEquals(names, [...names].sort(), "sorted");
  assertEquals(listTracepointsSync(), events, "sync and async lists");
});

Deno.test("a misspelled tracepoint gives a one-line error suggesting the right name", async () => {
  const error = await assertRejects(() => readFormat("block", "block_rq_isue"), ProbeNotFoundError);
  assertEquals(error.probe, "block:block_rq_isue", "probe");
  assertEquals(error.suggestions[0], "block:block_rq_issue", "best suggestion");
  assert(error.suggestions.length <= 3, "at most 3 suggestions");
  assert(!error.message.includes("\n"), "one line");
  assert(
    error.message.startsWith(
      "Unknown tracepoint 'block:block_rq_isue'. Did you mean: block:block_rq_issue, ",
    ),
    error.message,
  );
  assert(error.message.endsWith("?"), error.message);
  const sync = assertThrows(() => readFormatSync("block", "block_rq_isue"), ProbeNotFoundError);
  assertEquals(sync.message, error.message, "sync message");
});

Deno.test("an unknown category or a path-like name is reported as not found", async () => {
  const error = await assertRejects(() => readFormat("shed", "sched_switch"), ProbeNotFoundError);
  assertEquals(error.suggestions[0], "sched:sched_switch", "best suggestion");
  await assertRejects(() => readFormat("..", "events"), ProbeNotFoundError);
  await assertRejects(() => readFormat("sched", "../sched/sched_switch"), ProbeNotFoundError);
  const none = await assertRejects(() => readFormat("zzzz", "qqqqqqqq"), ProbeNotFoundError);
  assertEquals(none.suggestions, [], "no suggestions");
  assertEquals(none.message, "Unknown tracepoint 'zzzz:qqqqqqqq'.", "message");
});

Deno.test("closeMatches ranks by edit distance and bounds how far a match may be", () => {
  assertEquals(editDistance("issue", "isseu"), 1, "a transposition costs 1");
  assertEquals(editDistance("kitten", "sitting"), 3, "kitten/sitting");
  assertEquals(editDistance("", "abc"), 3, "empty");
  // Distances from "block_rq_isue": requeue 5 (over the limit of 4), merge 4, insert 4, issue 1.
  const candidates = ["block_rq_requeue", "block_rq_merge", "block_rq_insert", "block_rq_issue"];
  assertEquals(closeMatches("block_rq_isue", candidates), [
    "block_rq_issue",
    "block_rq_insert",
    "block_rq_merge",
  ]);
  assertEquals(closeMatches("block_rq_isue", candidates, 1), ["block_rq_issue"], "max 1");
  assertEquals(
    closeMatches("BLOCK_RQ_ISSUE", candidates, 1),
    ["block_rq_issue"],
    "case-insensitive",
  );
  assertEquals(closeMatches("xyz", candidates), [], "nothing close");
  assertEquals(closeMatches("ab", ["ba", "abcd", "abcde"]), ["ba", "abcd"], "limit 2 for short");
});
