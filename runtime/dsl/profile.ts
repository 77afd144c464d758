/**
 * The `profile` provider of the scripting surface.
 *
 * @module
 */
import type { Stream } from "../stream.ts";
import { type ProfileEvent, type ProfileOptions, profileRequest } from "../providers/profile.ts";
import { stream } from "./global.ts";

/**
 * Samples of every online CPU, `hz` times a second on each (default 99): the task running,
 * with its stacks. The basis of CPU profiles and flame graphs.
 *
 * @example The hottest kernel and user stacks
 * ```ts ignore
 * // ignore: run() loads BPF programs, which needs root (or CAP_BPF and CAP_PERFMON).
 * import { profile, run } from "../dsl.ts";
 * profile({ hz: 99 }).count((e) => [e.kstack, e.ustack], { top: 10 });
 * await run({ duration: "10s" });
 * ```
 */
export function profile(options: ProfileOptions = {}): Stream<ProfileEvent> {
  return stream(profileRequest(options));
}
