/**
 * The resolving pass: from a stream's source to its views, one per probe site. It asks each
 * probe's provider for its sites once (an optional probe the kernel lacks becomes a note),
 * compiles a stream's predicates on each view, and plans a span the first time a stream of its
 * events is resolved.
 *
 * @module
 */
import {
  type ProbeRequest,
  type SiteContext,
  SiteUnavailableError,
} from "../providers/provider.ts";
import type { SessionResources } from "./resources.ts";
import type { SpanPlan } from "./site_compiler.ts";
import { planSpan } from "./spans.ts";
import type { SpanRequest, StreamSource } from "./requests.ts";
import { type Entry, lambdaOn, resolverOf, type View } from "./views.ts";

/** Resolves stream sources to views on probe sites, remembering what it resolved. */
export class Resolver {
  readonly #ctx: SiteContext;
  readonly #res: SessionResources;
  readonly #sites = new Map<string, Entry[]>();
  readonly #spans = new Map<SpanRequest, { views: View[]; plan?: SpanPlan }>();
  /** One line per optional probe this kernel lacks. */
  readonly notes: string[] = [];

  constructor(ctx: SiteContext, res: SessionResources) {
    this.#ctx = ctx;
    this.#res = res;
  }

  /** The views of a stream's events, its own predicates compiled on each. */
  viewsOf(source: StreamSource): View[] {
    if (source.kind === "probe") return this.#probeViews(source);
    return this.#spanViews(source.span).map((v) => ({
      ...v,
      predicates: [...v.predicates, ...source.predicates.map((p) => lambdaOn(v, p))],
    }));
  }

  /** Every site resolved, with what was planned onto it. */
  get entries(): Entry[] {
    return [...this.#sites.values()].flat();
  }

  /** The spans planned, by name. */
  get spans(): Array<{ name: string; plan: SpanPlan }> {
    return [...this.#spans].flatMap(([r, s]) => s.plan ? [{ name: r.name, plan: s.plan }] : []);
  }

  #entriesOf(request: ProbeRequest): Entry[] {
    let entries = this.#sites.get(request.key);
    if (!entries) {
      try {
        entries = request.sites(this.#ctx).map((site) => ({ site, ends: [], consumers: [] }));
      } catch (e) {
        if (!(request.optional && e instanceof SiteUnavailableError)) throw e;
        this.notes.push(e.message);
        entries = [];
      }
      this.#sites.set(request.key, entries);
    }
    return entries;
  }

  /** A view of each site of a probe stream, its predicates compiled there. */
  #probeViews = (source: StreamSource & { kind: "probe" }): View[] =>
    this.#entriesOf(source.request).map((entry) => {
      const base = {
        entry,
        site: entry.site,
        fields: entry.site.fields.map((f) => ({ event: f.path, field: f })),
        toRecord: (p: readonly string[]) => [...p],
      };
      const view: View = {
        ...base,
        resolve: resolverOf(base, this.#ctx.stringSize),
        predicates: [],
      };
      view.predicates = source.predicates.map((p) => lambdaOn(view, p));
      return view;
    });

  #spanViews(span: SpanRequest): View[] {
    let planned = this.#spans.get(span);
    if (!planned) {
      planned = planSpan(span, this.#spans.size, this.#probeViews, this.#res, this.#ctx.stringSize);
      this.#spans.set(span, planned);
    }
    return planned.views;
  }
}
