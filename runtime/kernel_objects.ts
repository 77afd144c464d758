/**
 * The kernel objects a running session holds, closed in reverse order of creation: links
 * first (nothing new arrives), then programs and maps.
 *
 * @module
 */
import type { Link, LinkGroup } from "../bpf/link.ts";

/** Kernel objects of a session, closed in reverse order of creation: links, programs, maps. */
export class KernelObjects {
  readonly #owned: Disposable[] = [];
  readonly #links: Array<Link | LinkGroup> = [];

  own<T extends Disposable>(x: T): T {
    this.#owned.push(x);
    return x;
  }

  link(l: Link | LinkGroup): void {
    this.#links.push(l);
  }

  unlink(): void {
    while (this.#links.length) this.#links.pop()!.close();
  }

  close(): void {
    this.unlink();
    while (this.#owned.length) this.#owned.pop()![Symbol.dispose]();
  }
}
