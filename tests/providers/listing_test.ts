import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { readFormatSync } from "../../system/tracefs.ts";
import { formatListing, globMatcher, listProbes } from "../../runtime/listing.ts";
import { PROVIDERS } from "../../runtime/providers/registry.ts";
import { IN_SCOPE } from "../../cli/oneliner.ts";
import { haveNfsTracepoints } from "../../runtime/providers/io/nfs.ts";
import { type KernelFeature, kernelHas } from "../fixtures/kernel.ts";

Deno.test("listProbes() gives syscall entry and return probes with argument names and types", () => {
  const probes = listProbes("syscall:openat:*");
  equal(probes.map((p) => p.name), ["syscall:openat:entry", "syscall:openat:return"]);
  equal(probes[0].args.map((a) => a.name), ["dfd", "filename", "flags", "mode"]);
  equal(probes[0].args[1].type, "const char * (string)");
  equal(probes[1].args.slice(0, 2).map((a) => a.name), ["ret", "latencyNs"]);
});

Deno.test("listProbes() gives tracepoints with array and __data_loc fields", () => {
  const [rq] = listProbes("tracepoint:block:block_rq_issue");
  const types = Object.fromEntries(rq.args.map((a) => [a.name, a.type]));
  // RWBS_LEN differs between kernels: 8 bytes on 6.1, 10 on 6.18 (room for newer flags).
  equal(
    types.rwbs,
    `char[${
      readFormatSync("block", "block_rq_issue").fields.find((f) => f.name === "rwbs")!.arrayLength
    }]`,
  );
  ok(["char[8]", "char[10]"].includes(types.rwbs), types.rwbs);
  equal(types.cmd, "__data_loc char[]");
  equal(types.bytes, "unsigned int");
});

Deno.test("listProbes() without a colon matches anywhere in the name", () => {
  const names = listProbes("rq_issue").map((p) => p.name);
  ok(names.includes("tracepoint:block:block_rq_issue"));
  ok(names.every((n) => n.includes("rq_issue")));
});

Deno.test("formatListing() prints bpftrace -lv style", () => {
  const text = formatListing(listProbes("syscall:close:entry"), true);
  const [header, ...rest] = text.split("\n");
  ok(header.startsWith("(every event also has: u32 pid, u32 tid, string comm"), header);
  equal(rest.join("\n"), "syscall:close:entry\n    unsigned int fd");
});

Deno.test("globMatcher() treats only * and ? as wildcards", () => {
  ok(globMatcher("a.b*")("a.bc"));
  ok(!globMatcher("a.b*")("axbc"));
  ok(globMatcher("x?z")("xyz"));
});

Deno.test("io probes are listed with DTrace's argument names, and a missing NFS part is said", () => {
  const probes = listProbes("io:*");
  equal(probes.map((p) => p.name), ["io:done", "io:start", "io:wait-done", "io:wait-start"]);
  const start = probes.find((p) => p.name === "io:start")!;
  for (const arg of ["buf.b_flags", "buf.b_bcount", "dev.dev_statname", "file.fi_pathname"]) {
    ok(start.args.some((a) => a.name === arg), arg);
  }
  // The NFS part is said to be missing exactly where the nfs client's tracepoints are.
  const nfs = haveNfsTracepoints();
  equal(!!start.notes?.some((n) => n.startsWith("NFS:")), !nfs);
  const text = formatListing(probes, false);
  equal(text.includes("io:start  [1]") && text.includes("\n[1] NFS:"), !nfs, text);
  // A note is printed once, however many probes it concerns.
  equal(text.split("NFS:").length - 1, nfs ? 0 : 1, text);
  // DTrace's argument types, as dtrace -lv shows them.
  for (const t of ["bufinfo_t buf", "devinfo_t dev", "fileinfo_t file"]) {
    ok(formatListing(probes, true).includes(`    ${t}\n`), t);
  }
});

Deno.test("io wait events list the buf, dev and file they carry, typed as io:start's, and their association", () => {
  const types = (name: string) =>
    Object.fromEntries(listProbes(name)[0].args.map((a) => [a.name, a.type]));
  const start = types("io:start");
  for (const wait of ["io:wait-start", "io:wait-done"]) {
    const args = types(wait);
    equal(args.association, "string", wait);
    // What a wait knows of its I/O without the request: DTrace's names, io:start's types.
    const carried = [
      "buf",
      "dev",
      "file",
      ...["b_flags", "b_bcount", "b_bufsize", "b_blkno", "b_lblkno", "b_edev"].map((m) =>
        `buf.${m}`
      ),
      ...["dev_major", "dev_minor", "dev_instance", "dev_name", "dev_statname", "dev_pathname"]
        .map((m) => `dev.${m}`),
      ...["fi_offset", "fi_fs", "fi_mount", "fi_name", "fi_dirname", "fi_pathname"]
        .map((m) => `file.${m}`),
    ];
    equal(
      Object.keys(args).filter((a) => a in start).sort(),
      carried.sort(),
      `${wait}: what it shares with io:start`,
    );
    for (const a of carried) equal(args[a], start[a], `${wait} ${a}`);
    equal([args.buf, args.dev, args.file], ["bufinfo_t", "devinfo_t", "fileinfo_t"]);
    const text = formatListing(listProbes(wait), true);
    ok(text.includes(`\n${wait}\n`), text);
    for (
      const line of [
        "bufinfo_t buf",
        "string association",
        "u64 buf.b_blkno",
        "string file.fi_pathname",
      ]
    ) {
      ok(text.split("\n").includes(`    ${line}`), `${wait}: ${line}\n${text}`);
    }
  }
  equal(types("io:wait-done").waitNs, "u64");
});

Deno.test("aio probes are listed: reap and uring with their fields, and every AIO syscall", () => {
  const names = listProbes("aio:*").map((p) => p.name);
  for (const p of ["aio:reap", "aio:io_submit:entry", "aio:io_getevents:return"]) {
    ok(names.includes(p), p);
  }
  const [reap] = listProbes("aio:reap");
  for (const arg of ["latencyNs", "path", "bytes", "offset", "res"]) {
    ok(reap.args.some((a) => a.name === arg), arg);
  }
});

/** What a provider's probes need of the kernel to be listed. */
const NEEDS: Record<string, KernelFeature> = {
  kprobe: "kprobes",
  kretprobe: "kprobes",
  fentry: "fentry",
  fexit: "fentry",
};

Deno.test("every registered provider is exported by mod.ts, in one-liner scope and listed", async () => {
  const mod: Record<string, unknown> = await import("../../mod.ts");
  for (const { name } of PROVIDERS) {
    ok(mod[name] !== undefined, `mod.ts exports ${name}`);
    ok(IN_SCOPE.includes(name), `a one-liner sees ${name}`);
    // Probes in a file are listed for a file the glob names; kernel functions where the
    // kernel can probe them.
    const glob = name === "uprobe" || name === "uretprobe"
      ? `${name}:libc:*`
      : name === "usdt"
      ? "usdt:/usr/bin/python3:*"
      : `${name}:*`;
    const needs = NEEDS[name];
    const listed = needs === undefined || kernelHas(needs);
    equal(listProbes(glob).length > 0, listed, `probe -l lists ${glob}`);
  }
});
