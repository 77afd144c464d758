/**
 * A one-liner whose handler reads a field its probe does not have is told so in one line with
 * "did you mean", exit 2, before anything loads; spelled right, the same one-liner prints its
 * events. (usage_property_test checks that such a one-liner leaves nothing in the kernel.)
 *
 * Needs root, libbpf and perl.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { lines, probe } from "../fixtures/subprocess.ts";

const handler = (read: string) => `syscall.on('openat:entry', (e) => console.log(${read}))`;

Deno.test("probe -e with a misspelled field in its handler: one line with the suggestion, exit 2", async () => {
  const cases: Array<[string, string]> = [
    ["e.args.filenme", "e.args.filenme, which its events do not have; did you mean args.filename?"],
    ["e.arg.filename", "e.arg.filename, which its events do not have; did you mean args.filename?"],
    ["e.comn.length", "e.comn.length, which its events do not have; did you mean comm.length?"],
  ];
  for (const [read, says] of cases) {
    const r = await probe(["-e", handler(read), "-d", "5s"]);
    equal(r.code, 2, r.stderr);
    equal(lines(r.stderr).length, 1, r.stderr);
    ok(r.stderr.includes("syscall:openat:entry"), r.stderr);
    ok(r.stderr.includes(says), r.stderr);
    equal(r.stdout, "");
  }
});

Deno.test("probe -e with the field spelled right prints what the handler derives from it", async () => {
  const path = `/tmp/tsprobe-cli-reads-${crypto.randomUUID()}`;
  const script = `open(my $f, "<", "${path}")`;
  const r = await probe([
    "-e",
    handler("e.args?.filename.slice(5).toUpperCase(), e.comm.length"),
    "-c",
    `perl -e '${script}'`,
  ]);
  equal(r.code, 0, r.stderr);
  ok(lines(r.stdout).includes(`${path.slice(5).toUpperCase()} 4`), r.stdout);
});
