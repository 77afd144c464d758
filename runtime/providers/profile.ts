/**
 * The profile provider: samples every online CPU at a frequency (a `cpu-clock` perf event in
 * frequency mode, as `bpftrace`'s `profile:hz:N`), each sample an event of the task that was
 * running, with its kernel and user stacks (`e.kstack`, `e.ustack`). An idle CPU samples the
 * idle task (pid 0).
 *
 * @module
 */
import { attachCpuClock } from "../../bpf/link.ts";
import { onlineCpus } from "../../system/cpus.ts";
import { type EventHeader, headerFields } from "../codegen/fields.ts";
import { ArgumentError } from "../arguments.ts";
import type { ProbeRequest } from "./provider.ts";
import type { Provider } from "./probe_info.ts";

/** A sample: the task running on `cpu` when the clock fired. */
export interface ProfileEvent extends EventHeader {
  /** The probe, e.g. "profile:hz:99". */
  probe: string;
}

/** Options of {@link profileRequest}. */
export interface ProfileOptions {
  /** Samples per second on each CPU (default 99, as bpftrace's examples: off the timer tick). */
  hz?: number;
}

/** Most samples a second a CPU may be asked for (perf's default `perf_event_max_sample_rate`). */
const MAX_HZ = 100_000;

/** A request to sample every online CPU `hz` times a second. */
export function profileRequest(options: ProfileOptions = {}): ProbeRequest {
  const hz = options.hz ?? 99;
  if (!Number.isInteger(hz) || hz < 1 || hz > MAX_HZ) {
    throw new ArgumentError(`profile hz must be an integer from 1 to ${MAX_HZ}, got ${hz}`);
  }
  const name = `profile:hz:${hz}`;
  return {
    name,
    key: name,
    sites: () => [{
      name,
      fields: headerFields(),
      constants: [{ path: ["probe"], constant: name }],
      hook: {
        name: `profile_${hz}`.slice(0, 15),
        type: "perf_event",
        attach: (prog) => attachCpuClock(prog, hz, onlineCpus()),
      },
      companions: [],
    }],
  };
}

/** CPU sampling at a frequency. */
export const profileProvider: Provider = {
  name: "profile",
  list: (match) =>
    match("profile:hz:99") ? [{ name: "profile:hz:99", provider: "profile", args: [] }] : [],
};
