/**
 * Each planning pass on its own output (runtime/compiler/): resources, resolve, spans, lower,
 * and the site compiler's layout, program and decoders. Nothing is loaded; the syscall
 * provider reads tracefs.
 *
 * @module
 */
import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { loadParser } from "../../runtime/lambda/parse.ts";
import { syscallRequest, syscallSite } from "../../runtime/providers/syscall.ts";
import type { ProbeRequest, SiteContext } from "../../runtime/providers/provider.ts";
import { copyFrom, field } from "../../runtime/codegen/fields.ts";
import { SessionResources } from "../../runtime/compiler/resources.ts";
import { Resolver } from "../../runtime/compiler/resolve.ts";
import { lower } from "../../runtime/compiler/lower.ts";
import { compileSite, DROPPED_COUNTER } from "../../runtime/compiler/site_compiler.ts";
import type {
  ConsumerRequest,
  SpanRequest,
  StreamSource,
} from "../../runtime/compiler/requests.ts";
import { ArgumentError } from "../../runtime/arguments.ts";
import { call, type Helper, type Item } from "../../bpf/asm/mod.ts";
import { TAG_OFFSET } from "../../runtime/codegen/record.ts";

await loadParser();

function setup() {
  const res = new SessionResources();
  const ctx: SiteContext = {
    filter: {},
    stringSize: 64,
    map: (spec) => res.declare(spec),
    counter: (name, loss) => res.counter(name, loss),
    counters: "counters",
    scratch: "scratch",
  };
  return { res, resolver: new Resolver(ctx, res) };
}

// deno-lint-ignore no-explicit-any
const probe = (name: string, ...predicates: ((e: any) => unknown)[]): StreamSource => ({
  kind: "probe",
  request: syscallRequest(name),
  predicates: predicates.map((fn) => ({ fn })),
});

Deno.test("resources: a map is declared once, a named counter has one slot, losses are kept", () => {
  const res = new SessionResources();
  const spec = { name: "m", type: "hash", keySize: 8, valueSize: 8, maxEntries: 4 } as const;
  equal([res.declare(spec), res.declare({ ...spec, maxEntries: 9 })], ["m", "m"]);
  equal(res.maps, [spec]);
  const a = res.counter("x.lost", "things lost");
  equal([res.counter("x.lost"), res.slot(), res.slotOf("x.lost")], [a, a + 1, a]);
  ok(a > DROPPED_COUNTER, "slot 0 is the ring buffer's drop counter");
  equal([...res.losses], [["x.lost", "things lost"]]);
  equal(res.slots, a + 2);
});

Deno.test("resolve: a stream's source becomes one view per site, its predicates compiled there", () => {
  const { resolver } = setup();
  const views = resolver.viewsOf(probe("read:return", (e) => e.ret > 0));
  equal(views.map((v) => v.site.name), ["syscall:read:return"]);
  const [p] = views[0].predicates;
  equal(p.op === "compare" && [p.operator, p.left.op], [">", "field"]);
  // The same probe resolves to the same site: consumers of both streams share its program.
  equal(resolver.viewsOf(probe("read:return"))[0].entry, views[0].entry);
  equal(resolver.entries.length, 1);
});

Deno.test("spans: a map of pending starts, start actions, and end views with latencyNs", () => {
  const { res, resolver } = setup();
  const span: SpanRequest = {
    name: "io",
    start: probe("read:entry") as SpanRequest["start"],
    end: probe("read:return") as SpanRequest["end"],
    key: [{ fn: (e: { tid: number }) => e.tid }, { fn: (e: { tid: number }) => e.tid }],
    carry: { fd: { fn: (e: { args: { fd: number } }) => e.args.fd } },
    size: 100,
  };
  const views = resolver.viewsOf({ kind: "span", span, predicates: [] });
  equal(views.length, 1);
  ok(views[0].fields.some((f) => f.event.join(".") === "latencyNs"));
  ok(views[0].fields.some((f) => f.event.join(".") === "start.fd"));
  const map = res.maps.find((m) => m.name === "span_0")!;
  equal([map.type, map.maxEntries, map.valueSize], ["hash", 100, 16]);
  const start = resolver.entries.find((e) => e.site.name === "syscall:read:entry")!;
  equal(start.consumers.map((c) => c.action.kind), ["span-start"]);
  equal(resolver.spans.map((s) => s.name), ["io"]);
  const bad = { ...span, key: [span.key[0], { fn: (e: { tid: number }) => [e.tid, e.tid] }] };
  throws(
    () => setup().resolver.viewsOf({ kind: "span", span: bad as SpanRequest, predicates: [] }),
    ArgumentError,
  );
});

Deno.test("lower: a handler sends the fields it reads; an aggregation one map from every view", () => {
  const { res, resolver } = setup();
  const requests: ConsumerRequest[] = [
    { source: probe("read:return"), kind: "stream", handler: (e) => (e as { ret: number }).ret },
    {
      source: probe("read:return", (e) => e.ret > 0),
      kind: "aggregate",
      aggregation: { name: "sizes", kind: "count", by: { fn: (e) => e.comm }, size: 64 },
    },
  ];
  const { bindings, aggregations } = lower(requests, resolver, res, 64);
  equal(bindings.map((b) => [b.tag, b.probe]), [[0, "syscall:read:return"]]);
  const [entry] = resolver.entries;
  const stream = entry.consumers[0].action;
  equal(stream.kind === "stream" && stream.fields.map((f) => f.event.join(".")), ["ret"]);
  equal(aggregations.map((a) => [a.plan.map, a.plan.keys.length]), [["agg_0", 1]]);
  // An unnamed key part is named after its field.
  equal(aggregations[0].keyNames, ["comm"]);
  ok(res.maps.some((m) => m.name === "agg_0"));
  equal(entry.consumers[1].predicates.length, 1);
});

Deno.test("site compiler: the record layout, one program, and decoders from that layout", () => {
  const { res, resolver } = setup();
  const got: unknown[] = [];
  lower(
    [{
      source: probe("read:return"),
      kind: "stream",
      handler: (e) => got.push((e as { ret: number }).ret),
    }],
    resolver,
    res,
    64,
  );
  const [entry] = resolver.entries;
  const shared = {
    events: "events",
    wakeBytes: 1 << 16,
    scratch: "scratch",
    counters: "counters",
    zeros: "zeros",
  };
  const site = compileSite(entry.site, entry.ends, entry.consumers, shared, {});
  // ret is the return's own: no program at the entry.
  equal(site.programs.map((p) => p.type), ["tracepoint"]);
  equal(site.captured.map((c) => c.path), ["ret"]);
  // A record as the kernel writes it: the tag, then ret where the layout put it.
  const record = new DataView(new ArrayBuffer(site.scratchSize));
  record.setUint32(TAG_OFFSET, 0, true);
  const decode = site.decoders.get(0)!;
  // Find ret's offset by decoding a record with a marker at each 8-byte slot.
  let found = -1;
  for (let off = 8; off + 8 <= site.scratchSize && found < 0; off += 8) {
    record.setBigInt64(off, -5n, true);
    if ((decode(record, 0) as { ret: number }).ret === -5) found = off;
    record.setBigInt64(off, 0n, true);
  }
  ok(found >= 0, "ret is decoded from the record");
  // What the decoder reads is what the layout placed: the provider's field, at that offset.
  const [placed] = site.decoded.get(0)!;
  equal([placed.event, placed.offset, placed.field.path], [["ret"], found, ["ret"]]);
});

const INT = { type: "int", size: 8, signed: true } as const;

/** True when a program calls `helper`. */
function calls(items: Item[], helper: Helper): boolean {
  const want = call(helper);
  return items.some((i) => !("label" in i) && i.opcode === want.opcode && i.imm === want.imm);
}

Deno.test("site compiler: a syscall return has an entry program saving only what is read", () => {
  const shared = {
    events: "events",
    wakeBytes: 1 << 16,
    scratch: "scratch",
    counters: "counters",
    zeros: "zeros",
  };
  // deno-lint-ignore no-explicit-any
  const compiled = (handler: (e: any) => unknown) => {
    const { res, resolver } = setup();
    lower([{ source: probe("read:return"), kind: "stream", handler }], resolver, res, 64);
    const [entry] = resolver.entries;
    const site = compileSite(entry.site, entry.ends, entry.consumers, shared, {});
    return { programs: site.programs, state: res.maps.filter((m) => m.name.startsWith("sys_")) };
  };
  const none = compiled((e: { ret: number; comm: string }) => [e.ret, e.comm]);
  equal([none.programs.length, none.state], [1, []]);
  // Nothing reads the time: the return does not take it either.
  ok(!calls(none.programs[0].instructions, "ktime_get_ns"));

  // The latency: the entry's time, no argument word.
  const latency = compiled((e: { latencyNs: number }) => e.latencyNs);
  equal(latency.programs.map((p) => p.name), ["sye_read", "syr_read"]);
  equal(latency.state.map((m) => [m.name, m.valueSize]), [["sys_state0", 8]]);
  ok(latency.programs.every((p) => calls(p.instructions, "ktime_get_ns")));

  // read(fd, buf, count): count is the third word; the time is not taken anywhere.
  const args = compiled((e: { args: { count: number } }) => e.args.count);
  equal(args.programs.map((p) => p.name), ["sye_read", "syr_read"]);
  equal(args.state.map((m) => [m.name, m.valueSize]), [["sys_state3", 32]]);
  ok(args.programs.every((p) => !calls(p.instructions, "ktime_get_ns")));
  ok(!calls(args.programs[0].instructions, "probe_read_kernel"), "words are read directly");

  // A handler given the whole event reads everything.
  const all = compiled((e: unknown) => console.log(e));
  equal(all.state.map((m) => [m.name, m.valueSize]), [["sys_state3", 32]]);
  ok(all.programs.every((p) => calls(p.instructions, "ktime_get_ns")));

  // A field a provider adds to the syscall's site may read any saved word: all are saved.
  const { res, resolver } = setup();
  const request: ProbeRequest = {
    name: "wrapped",
    key: "wrapped",
    sites: (ctx) => {
      const site = syscallSite("read", "return", ctx);
      return [{
        ...site,
        fields: [...site.fields, field(["third"], INT, copyFrom("state", 24, 8))],
      }];
    },
  };
  lower(
    [{
      source: { kind: "probe", request, predicates: [] },
      kind: "stream",
      handler: (e) => (e as { third: number }).third,
    }],
    resolver,
    res,
    64,
  );
  const [entry] = resolver.entries;
  const site = compileSite(entry.site, entry.ends, entry.consumers, shared, {});
  equal(site.programs.map((p) => p.name), ["sye_read", "syr_read"]);
  equal(res.maps.filter((m) => m.name.startsWith("sys_")).map((m) => m.name), ["sys_state3"]);
});
