/**
 * Every provider, registered once: the one-liner scope, `probe -l` and the test that mod.ts
 * exports each of them all read this list. A new provider adds its folder and one line here.
 *
 * @module
 */
import { aioProvider } from "./aio/aio.ts";
import { ioProvider } from "./io/io.ts";
import type { ProbeInfo, Provider } from "./probe_info.ts";
import { syscallProvider } from "./syscall.ts";
import { tracepointProvider } from "./tracepoint.ts";
import { uprobeProvider, uretprobeProvider } from "./functions/uprobe.ts";
import { kprobeProvider, kretprobeProvider } from "./functions/kprobe.ts";
import { fentryProvider, fexitProvider } from "./functions/fentry.ts";
import { profileProvider } from "./profile.ts";
import { usdtProvider } from "./functions/usdt.ts";
import { schedProvider } from "./sched.ts";
import { procProvider } from "./proc.ts";

/** The providers, by the name a script calls them (`io.on(...)`). */
export const PROVIDERS: readonly Provider[] = [
  syscallProvider,
  tracepointProvider,
  ioProvider,
  aioProvider,
  uprobeProvider,
  uretprobeProvider,
  kprobeProvider,
  kretprobeProvider,
  fentryProvider,
  fexitProvider,
  profileProvider,
  usdtProvider,
  schedProvider,
  procProvider,
];

/** The probes of every provider whose full names `match` (the glob `glob`) accepts, sorted. */
export function listAll(match: (name: string) => boolean, glob?: string): ProbeInfo[] {
  return PROVIDERS.flatMap((p) => p.list(match, glob))
    .sort((a, b) => a.name.localeCompare(b.name));
}
