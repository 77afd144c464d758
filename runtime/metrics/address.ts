/**
 * Where a session serves its metrics: `HOST:PORT` checked when the options are, before the
 * server (and what it imports) is loaded, which only a session with metrics does.
 *
 * @module
 */
import { ArgumentError } from "../arguments.ts";

/** A host and port to serve on. */
export interface MetricsAddress {
  hostname: string;
  port: number;
}

/** An address that is not `HOST:PORT` (a usage error: exit 2). */
export class MetricsAddressError extends ArgumentError {
  /** `message` says what was wrong and what to give. */
  constructor(message: string) {
    super(message);
    this.name = "MetricsAddressError";
  }
}

/**
 * `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`) or `:PORT` (127.0.0.1): where
 * to serve. Throws {@link MetricsAddressError}.
 */
export function parseMetricsAddress(text: string): MetricsAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new MetricsAddressError(
      `metrics address '${text}' is not valid: give HOST:PORT, like 127.0.0.1:9464`,
    );
  }
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}
