/**
 * Reads tracepoint record layouts from tracefs (`events/<category>/<name>/format`), so that
 * generated BPF code loads each field at the offset and width this kernel actually uses.
 *
 * Pure Deno: no FFI, so it can be used and tested without libbpf.
 *
 * @module
 */
import { closeMatches } from "./suggest.ts";

/** tracefs is missing, unreadable, or holds text this parser does not understand. */
export class TracefsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TracefsError";
  }
}

/**
 * A probe (tracepoint, kprobe function, ...) that this kernel does not have. Other providers
 * throw it too, so that every misspelling gets the same one-line "Did you mean" message.
 */
export class ProbeNotFoundError extends Error {
  /** The name as the user wrote it, e.g. "block:block_rq_isue". */
  readonly probe: string;
  /** Existing names close to {@link probe}, best first (may be empty). */
  readonly suggestions: string[];
  /** What kind of probe was looked up, e.g. "tracepoint". */
  readonly kind: string;
  /** A `kind` probe named `probe` is not in this kernel; `suggestions` are close names. */
  constructor(kind: string, probe: string, suggestions: string[]) {
    const hint = suggestions.length > 0 ? ` Did you mean: ${suggestions.join(", ")}?` : "";
    super(`Unknown ${kind} '${probe}'.${hint}`);
    this.name = "ProbeNotFoundError";
    this.kind = kind;
    this.probe = probe;
    this.suggestions = suggestions;
  }
}

/** How a field's bytes are to be read. */
export type FieldKind =
  | "int"
  | "pointer"
  | "string"
  | "array"
  | "data_loc_string"
  | "data_loc_array";

/** One field of a tracepoint record, as the format file describes it. */
export interface TracepointField {
  /** The field name, e.g. "filename". */
  name: string;
  /**
   * The C type without the name: "const char *", "unsigned int", "dev_t". For a fixed array it
   * is the element type ("char" for `char rwbs[10]`); for `__data_loc char[]` it is "char[]".
   */
  cType: string;
  /** Byte offset from the start of the record (the common_ header included). */
  offset: number;
  /** Size in bytes; 4 for a `__data_loc` descriptor; 0 for a flexible array (`args[]`). */
  size: number;
  /** Whether the kernel marks the value as signed. */
  signed: boolean;
  /** Element count of a fixed array (`char rwbs[10]` gives 10; 0 for a flexible `x[]`). */
  arrayLength?: number;
  /** A `__data_loc` field: a u32 whose low 16 bits are the data's offset, high 16 its length. */
  dataLoc: boolean;
  /**
   * A `__rel_loc` field: like {@link dataLoc} (which is then also true) but the offset counts
   * from the end of this field rather than from the start of the record.
   */
  relLoc?: boolean;
  /** One of the common_ fields every record starts with. */
  common: boolean;
  /** How the bytes are read; see {@link FieldKind}. */
  kind: FieldKind;
}

/** The layout of one tracepoint's record. */
export interface TracepointFormat {
  category: string;
  name: string;
  /** The event id (the `ID:` line), as perf_event_open wants it in `config`. */
  id: number;
  /** All fields in file order, common_ fields included. */
  fields: TracepointField[];
  /** The end of the last field: max(offset + size). Dynamic data may follow it. */
  size: number;
}

const PRIMARY_ROOT = "/sys/kernel/tracing";
const DEBUGFS_ROOT = "/sys/kernel/debug/tracing";
let cachedRoot: string | undefined;

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    // NotFound and PermissionDenied both mean "not usable from here".
    return false;
  }
}

/**
 * The tracefs mount point, normally "/sys/kernel/tracing". Mounts tracefs there when it is
 * missing (a fresh VM or container often lacks it), else falls back to the debugfs path.
 * The answer is cached for the life of the process.
 */
export function tracefsRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  if (!isDirectory(`${PRIMARY_ROOT}/events`)) {
    try {
      new Deno.Command("mount", {
        args: ["-t", "tracefs", "nodev", PRIMARY_ROOT],
        stdout: "null",
        stderr: "null",
      }).outputSync();
    } catch {
      // No mount binary or no permission to run it: the checks below decide.
    }
  }
  if (isDirectory(`${PRIMARY_ROOT}/events`)) cachedRoot = PRIMARY_ROOT;
  else if (isDirectory(`${DEBUGFS_ROOT}/events`)) cachedRoot = DEBUGFS_ROOT;
  else {
    throw new TracefsError(
      `tracefs is not available at ${PRIMARY_ROOT}: run as root, or mount it with ` +
        `'mount -t tracefs nodev ${PRIMARY_ROOT}'`,
    );
  }
  return cachedRoot;
}

// `field:<declaration>;<tab>offset:N;<tab>size:N;<tab>signed:N;` (signed is absent on very old
// kernels). The declaration cannot contain ';'.
const FIELD_LINE = /^field:([^;]+);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(-?\d+);)?\s*$/;
// `<type> <name><dims>`, where the type may end in '*' or "[]" and dims are `[N]` groups.
const DECLARATION = /^(.*?)\s*\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)$/;

// Element sizes, for the older kernels that print an array length as an expression
// (`__u8 saddr[sizeof(struct sockaddr_in6)]`) instead of a number.
const ELEMENT_SIZES: Record<string, number> = {
  "char": 1,
  "signed char": 1,
  "unsigned char": 1,
  "u8": 1,
  "__u8": 1,
  "s8": 1,
  "__s8": 1,
  "short": 2,
  "unsigned short": 2,
  "u16": 2,
  "__u16": 2,
  "s16": 2,
  "int": 4,
  "unsigned int": 4,
  "u32": 4,
  "__u32": 4,
  "s32": 4,
  "long": 8,
  "unsigned long": 8,
  "u64": 8,
  "__u64": 8,
  "s64": 8,
};

function fieldKind(cType: string, isArray: boolean, dataLoc: boolean): FieldKind {
  const element = cType.replace(/^const\s+/, "");
  if (dataLoc) return element === "char[]" ? "data_loc_string" : "data_loc_array";
  if (isArray) return element === "char" ? "string" : "array";
  if (cType.endsWith("*")) return "pointer";
  return "int";
}

/**
 * Parses the text of an `events/<category>/<name>/format` file.
 * Throws {@link TracefsError} naming the offending line when the text is malformed.
 */
export function parseFormat(category: string, name: string, text: string): TracepointFormat {
  const where = `format of tracepoint '${category}:${name}'`;
  const fail = (lineNo: number, line: string, why: string): never => {
    throw new TracefsError(`Malformed ${where}, line ${lineNo} (${why}): ${JSON.stringify(line)}`);
  };
  let id: number | undefined;
  let inFormat = false;
  const fields: TracepointField[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const lineNo = i + 1;
    if (line === "") continue;
    if (line.startsWith("print fmt:")) break;
    if (!inFormat) {
      if (line.startsWith("ID:")) {
        const value = line.slice(3).trim();
        if (!/^\d+$/.test(value)) fail(lineNo, line, "ID is not a number");
        id = Number(value);
      } else if (line === "format:") inFormat = true;
      continue; // `name:` and anything a future kernel adds to the header.
    }
    const match = FIELD_LINE.exec(line);
    if (!match) fail(lineNo, line, "expected field:<decl>; offset:N; size:N; signed:N;");
    const [, rawDecl, offsetText, sizeText, signedText] = match!;
    let decl = rawDecl.trim().replace(/\s+/g, " ");
    let dataLoc = false;
    let relLoc = false;
    const loc = /^__(data|rel)_loc\s+/.exec(decl);
    if (loc) {
      dataLoc = true;
      relLoc = loc[1] === "rel";
      decl = decl.slice(loc[0].length);
    }
    const parts = DECLARATION.exec(decl);
    if (!parts || parts[1] === "") fail(lineNo, line, "expected '<type> <name>'");
    const [, cType, fieldName, dims] = parts!;
    const offset = Number(offsetText);
    const size = Number(sizeText);
    const field: TracepointField = {
      name: fieldName,
      cType,
      offset,
      size,
      signed: signedText !== undefined && signedText !== "0",
      dataLoc,
      common: fieldName.startsWith("common_"),
      kind: fieldKind(cType, dims !== "", dataLoc),
    };
    if (relLoc) field.relLoc = true;
    if (dims !== "") {
      // Several dimensions (`x[2][3]`) flatten to their product.
      let length = 1;
      for (const [, dim] of dims.matchAll(/\[([^\]]*)\]/g)) {
        const text = dim.trim();
        if (text === "") length = 0; // A flexible array: `args[]`, size 0.
        else if (/^\d+$/.test(text)) length *= Number(text);
        else {
          const elementSize = ELEMENT_SIZES[cType.replace(/^const /, "")] ??
            (cType.endsWith("*") ? 8 : undefined);
          if (elementSize === undefined) fail(lineNo, line, `array length '${text}' unknown`);
          length = size / elementSize!;
          break;
        }
      }
      field.arrayLength = length;
    }
    fields.push(field);
  }
  if (id === undefined) throw new TracefsError(`Malformed ${where}: no 'ID:' line`);
  if (fields.length === 0) throw new TracefsError(`Malformed ${where}: no fields`);
  const size = Math.max(...fields.map((f) => f.offset + f.size));
  return { category, name, id, fields, size };
}

// A category or event name is one path component; anything else cannot name an event.
function validComponent(part: string): boolean {
  return part !== "" && part !== "." && part !== ".." && !part.includes("/");
}

function formatPath(category: string, name: string): string {
  return `${tracefsRoot()}/events/${category}/${name}/format`;
}

function notFound(
  category: string,
  name: string,
  events: { category: string; name: string }[],
): ProbeNotFoundError {
  const probe = `${category}:${name}`;
  return new ProbeNotFoundError(
    "tracepoint",
    probe,
    closeMatches(probe, events.map((e) => `${e.category}:${e.name}`)),
  );
}

function readFailure(category: string, name: string, error: unknown): TracefsError {
  const why = error instanceof Deno.errors.PermissionDenied
    ? "permission denied: run as root"
    : String((error as Error)?.message ?? error);
  return new TracefsError(`Cannot read the format of tracepoint '${category}:${name}': ${why}`);
}

/**
 * Reads and parses the format of tracepoint `category:name`. Throws
 * {@link ProbeNotFoundError}, with close names as suggestions, when the event does not exist.
 */
export async function readFormat(category: string, name: string): Promise<TracepointFormat> {
  let text: string;
  try {
    if (!validComponent(category) || !validComponent(name)) throw new Deno.errors.NotFound();
    text = await Deno.readTextFile(formatPath(category, name));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      throw notFound(category, name, await listTracepoints());
    }
    if (error instanceof TracefsError) throw error;
    throw readFailure(category, name, error);
  }
  return parseFormat(category, name, text);
}

/** Synchronous {@link readFormat}, for code that builds programs outside an async context. */
export function readFormatSync(category: string, name: string): TracepointFormat {
  let text: string;
  try {
    if (!validComponent(category) || !validComponent(name)) throw new Deno.errors.NotFound();
    text = Deno.readTextFileSync(formatPath(category, name));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      throw notFound(category, name, listTracepointsSync());
    }
    if (error instanceof TracefsError) throw error;
    throw readFailure(category, name, error);
  }
  return parseFormat(category, name, text);
}

function compareEvents(
  a: { category: string; name: string },
  b: { category: string; name: string },
): number {
  const x = `${a.category}:${a.name}`;
  const y = `${b.category}:${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

function hasFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Every tracepoint of this kernel, sorted by "category:name". Only directories with a format
 * file count, which skips the top-level enable/filter/header_* files and per-category controls.
 */
export async function listTracepoints(): Promise<{ category: string; name: string }[]> {
  const events = `${tracefsRoot()}/events`;
  const result: { category: string; name: string }[] = [];
  for await (const category of Deno.readDir(events)) {
    if (!category.isDirectory) continue;
    for await (const event of Deno.readDir(`${events}/${category.name}`)) {
      if (!event.isDirectory) continue;
      if (hasFile(`${events}/${category.name}/${event.name}/format`)) {
        result.push({ category: category.name, name: event.name });
      }
    }
  }
  return result.sort(compareEvents);
}

/** Synchronous {@link listTracepoints}. */
export function listTracepointsSync(): { category: string; name: string }[] {
  const events = `${tracefsRoot()}/events`;
  const result: { category: string; name: string }[] = [];
  for (const category of Deno.readDirSync(events)) {
    if (!category.isDirectory) continue;
    for (const event of Deno.readDirSync(`${events}/${category.name}`)) {
      if (!event.isDirectory) continue;
      if (hasFile(`${events}/${category.name}/${event.name}/format`)) {
        result.push({ category: category.name, name: event.name });
      }
    }
  }
  return result.sort(compareEvents);
}
