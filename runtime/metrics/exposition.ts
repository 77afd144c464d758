/**
 * The Prometheus text exposition format (version 0.0.4, what Prometheus scrapes and
 * `promtool check metrics` parses): metric families with HELP and TYPE, samples with labels,
 * names made valid and label values escaped as the format requires.
 *
 * @module
 */

/** A metric family's type, as the format names it. */
export type MetricType = "counter" | "gauge" | "histogram";

/**
 * A metric family: its name, help, type and sample lines, each already in the format
 * ({@link sampleLine}): a scrape of 10,000 series builds 10,000 strings, not 10,000 objects.
 */
export interface MetricFamily {
  /** A valid metric name ({@link metricName}). */
  name: string;
  /** One line of help (any text; escaped when written). */
  help: string;
  /** Its type. */
  type: MetricType;
  /** Its samples, as {@link sampleLine} writes them. */
  lines: string[];
}

/**
 * `text` as a metric name: lower case, every run of characters outside `[a-z0-9_]` one `_`,
 * no leading digit, never empty.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { metricName } from "./exposition.ts";
 * equal(metricName("Block I/O latency"), "block_i_o_latency");
 * equal(metricName("9 lives"), "_9_lives");
 * ```
 */
export function metricName(text: string): string {
  const name = text.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  return name === "" ? "_" : /^[0-9]/.test(name) ? `_${name}` : name;
}

/**
 * `text` as a label name: as {@link metricName} (which never starts with the reserved `__`),
 * but never `le` or `quantile`, which histograms and summaries give their own meaning.
 */
export function labelName(text: string): string {
  const name = metricName(text);
  return name === "le" || name === "quantile" ? `${name}_` : name;
}

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** HELP text as the format wants it: backslash and line feed escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/**
 * Labels as the format writes them inside braces, `disk="vda",op="R"`, from name and value
 * pairs (names already valid; values escaped here): made once per key and reused by every
 * sample of it.
 */
export function labelsText(labels: Iterable<readonly [string, string]>): string {
  let text = "";
  for (const [name, value] of labels) {
    text += `${text ? "," : ""}${name}="${escapeLabelValue(value)}"`;
  }
  return text;
}

/** One sample line: `name{labels} value` (`labels` from {@link labelsText}, may be empty). */
export function sampleLine(name: string, labels: string, value: number): string {
  return `${name}${labels ? `{${labels}}` : ""} ${formatValue(value)}`;
}

/** A sample value: integers exactly, the rest as JavaScript prints them, `+Inf`, `NaN`. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  return String(v);
}

/** The exposition of `families`, each once, in order, ending with a line feed. */
export function exposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const line of f.lines) out.push(line); // not a spread: families can be long
  }
  return out.length ? `${out.join("\n")}\n` : "";
}
