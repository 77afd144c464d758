/**
 * Machine-readable output, one schema for `probe` and every recipe: a run writes records, each
 * a JSON object with its `type`, the wall-clock `time` it was written, the seconds since
 * tracing began and the interval it belongs to. `--format ndjson` writes one record per line
 * as it comes; `--format json` writes the same records as one JSON array. The schema, as JSON
 * Schema, is `docs/records.schema.json`; the README's "Output" section describes it.
 *
 * @module
 */
import type { AggregationData } from "./aggregate/data.ts";
import { type AggregationJson, aggregationJson } from "./aggregate/print.ts";
import { printableJson } from "./printable.ts";
import type { RunSummary, StopReason } from "./run_summary.ts";

/** A JSON value, as records carry them. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/** What every record has. */
export interface RecordHeader {
  /** What the record holds. */
  type: "aggregation" | "table" | "event" | "end";
  /** Who wrote it: "probe" or the recipe's name. */
  source: string;
  /** When it was written, ISO 8601 in UTC with milliseconds. */
  time: string;
  /** Seconds from the start of tracing to `time`. */
  elapsed_s: number;
  /** The interval (1, 2, ...) whose data it holds; null for data of the whole run. */
  interval: number | null;
}

/** An aggregation: its keys named, its values as {@link aggregationJson} gives them. */
export type AggregationRecord = RecordHeader & { type: "aggregation" } & AggregationJson;

/** A recipe's table: rows of named columns (syscount's syscalls, iotop's processes). */
export interface TableRecord extends RecordHeader {
  /** A table. */
  type: "table";
  /** The table's name. */
  name: string;
  /** Its rows, in the order the text shows them. */
  rows: Record<string, JsonValue | undefined>[];
  /** What the text prints under the table: totals, rows left out, keys lost. */
  summary?: Record<string, JsonValue | undefined>;
}

/** One traced event, as a recipe reports it (opensnoop's opens, biosnoop's I/Os). */
export interface EventRecord extends RecordHeader {
  /** An event. */
  type: "event";
  /** What kind of event: the recipe's name for its events, or the probe. */
  name: string;
  /** Its fields. */
  data: Record<string, JsonValue | undefined>;
}

/** The run's end: why it stopped, what was delivered, and every count of lost data. */
export interface EndRecord extends RecordHeader {
  /** The end. */
  type: "end";
  /** Why the run stopped ({@link RunSummary.reason}). */
  reason: StopReason;
  /** The traced command's exit status; null without one. */
  command_exit_code: number | null;
  /** Events delivered to handlers. */
  events: number;
  /** Events delivered, per probe. */
  by_probe: Record<string, number>;
  /** Events the ring buffer had no room for. */
  dropped: number;
  /** The run's counters (each way data can be lost among them). */
  counters: Record<string, number>;
  /** One line per nonzero loss. */
  losses: string[];
}

/** Any record. */
export type OutputRecord = AggregationRecord | TableRecord | EventRecord | EndRecord;

/**
 * Writes records for a run, as NDJSON or as one JSON array, through `write` (which takes
 * whole lines). Strings are escaped as {@link printableJson} does: traced strings cannot move
 * a terminal's cursor.
 */
export class RecordWriter {
  /** The interval the next records belong to; null for the whole run. */
  interval: number | null = null;
  readonly #source: string;
  readonly #array: boolean;
  readonly #write: (line: string) => void;
  #start = Date.now();
  #written = 0;

  /** `format`: "ndjson" (a record per line) or "json" (one array, closed by finish()). */
  constructor(source: string, format: "json" | "ndjson", write: (line: string) => void) {
    this.#source = source;
    this.#array = format === "json";
    this.#write = write;
  }

  /** Counts `elapsed_s` from now (call once tracing has begun). */
  started(): void {
    this.#start = Date.now();
  }

  /** Writes an aggregation. */
  aggregation(data: AggregationData): void {
    this.#record("aggregation", aggregationJson(data));
  }

  /** Writes a table of rows, with what is said under it. */
  table(
    name: string,
    rows: Record<string, JsonValue | undefined>[],
    summary?: Record<string, JsonValue | undefined>,
  ): void {
    this.#record("table", { name, rows, ...(summary && { summary }) });
  }

  /** Writes an event. */
  event(name: string, data: Record<string, JsonValue | undefined>): void {
    this.#record("event", { name, data });
  }

  /** Writes the run's end record. */
  end(summary: RunSummary): void {
    this.interval = null;
    this.#record("end", {
      reason: summary.reason,
      command_exit_code: summary.commandExitCode ?? null,
      events: summary.events,
      by_probe: summary.byProbe,
      dropped: summary.dropped,
      counters: summary.counters,
      losses: summary.losses,
    });
  }

  /** Ends the output: closes the JSON array (an empty one if nothing was written). */
  finish(): void {
    if (this.#array) this.#write(this.#written === 0 ? "[]" : "]");
  }

  #record(type: OutputRecord["type"], body: object): void {
    const now = Date.now();
    const record = {
      type,
      source: this.#source,
      time: new Date(now).toISOString(),
      elapsed_s: (now - this.#start) / 1000,
      interval: this.interval,
      ...body,
    };
    const text = printableJson(record);
    this.#write(this.#array ? `${this.#written === 0 ? "[" : ","}${text}` : text);
    this.#written++;
  }
}
