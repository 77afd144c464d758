/**
 * The maps and counters a session's programs share, as planning names them: a map is declared
 * once by name; a named counter (a provider's "aio.reaped") has one slot in the session's
 * per-CPU counter array, and says what it lost when it counts a loss; unnamed slots serve
 * counters read by slot (spans', aggregations').
 *
 * @module
 */
import type { MapSpec } from "../../bpf/map.ts";
import { DROPPED_COUNTER } from "./site_compiler.ts";

/** What planning declares for the session to create. */
export class SessionResources {
  readonly #maps = new Map<string, MapSpec>();
  readonly #named = new Map<string, number>();
  readonly #losses = new Map<string, string>();
  #next = DROPPED_COUNTER + 1;

  /** Declares a map (the first declaration of a name wins); returns its name. */
  declare(spec: MapSpec): string {
    if (!this.#maps.has(spec.name)) this.#maps.set(spec.name, spec);
    return spec.name;
  }

  /** The slot of a named counter; `loss` says what a nonzero count lost. */
  counter(name: string, loss?: string): number {
    if (!this.#named.has(name)) this.#named.set(name, this.#next++);
    if (loss) this.#losses.set(name, loss);
    return this.#named.get(name)!;
  }

  /** A counter slot of its own, read by its slot. */
  slot(): number {
    return this.#next++;
  }

  /** The slot of a named counter, if one was declared. */
  slotOf(name: string): number | undefined {
    return this.#named.get(name);
  }

  /** Counter slots so far: the size of the counter array. */
  get slots(): number {
    return this.#next;
  }

  get maps(): MapSpec[] {
    return [...this.#maps.values()];
  }

  get counters(): ReadonlyMap<string, number> {
    return this.#named;
  }

  get losses(): ReadonlyMap<string, string> {
    return this.#losses;
  }
}
