/**
 * What a one-liner sees: each name in its scope is mod.ts's own export, though a one-liner
 * imports only the modules of the names it uses; a key namer it calls is known to the compiler
 * even when no provider it uses brings it.
 *
 * @module
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { IN_SCOPE, NAMERS, SCOPE } from "../../cli/oneliner.ts";
import { keyNamerNames } from "../../runtime/lambda/key_namers.ts";
import { probe } from "../fixtures/subprocess.ts";

Deno.test("each name in a one-liner's scope is mod.ts's export of that name", async () => {
  const mod: Record<string, unknown> = await import("../../mod.ts");
  equal(IN_SCOPE, Object.keys(SCOPE));
  for (const [name, url] of Object.entries(SCOPE)) {
    const exported = (await import(url))[name];
    ok(exported !== undefined, `${url} exports ${name}`);
    equal(exported, mod[name], `${name} of ${url} is mod.ts's`);
  }
});

Deno.test("every key namer mod.ts brings is one a one-liner can call", async () => {
  await import("../../mod.ts");
  equal(Object.keys(NAMERS).sort(), keyNamerNames().sort());
});

Deno.test("a one-liner calls syscallName in a key with only the tracepoint provider", async () => {
  const r = await probe([
    "-e",
    'tracepoint("raw_syscalls:sys_enter").count((e) => syscallName(e.args.id))',
    "-c",
    "perl -e 'getppid() for 1..5'",
    "-q",
  ]);
  equal(r.code, 0, r.stderr);
  // Named, not numbered: perl's 5 calls, and sh's own (dash reads its parent's pid too).
  const calls = /^@count\[getppid\]: +(\d+)$/m.exec(r.stdout);
  ok(calls && Number(calls[1]) >= 5, r.stdout);
});
