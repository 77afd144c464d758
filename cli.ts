/**
 * The tsprobe command line.
 *
 *   tsprobe list [-v] [GLOB]     probes of this kernel, with argument types when -v
 *   tsprobe list --json [GLOB]   the same as JSON
 */
import { parseArgs } from "node:util";
import { formatListing, listProbes } from "./runtime/listing.ts";

const USAGE = `usage: tsprobe <command> [options]
commands:
  list [-v] [--json] [GLOB]   list probes (syscall:NAME:entry|return, tracepoint:CAT:NAME),
                              with argument names and C types when -v
options:
  -h, --help                  this text`;

function fail(message: string): never {
  console.error(`tsprobe: ${message}`);
  Deno.exit(2);
}

const [command, ...rest] = Deno.args;
if (command === undefined || command === "-h" || command === "--help" || command === "help") {
  console.log(USAGE);
  Deno.exit(0);
}
if (command === "list") {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (positionals.length > 1) fail("list takes at most one GLOB (quote it: 'syscall:open*')");
  const probes = listProbes(positionals[0]);
  if (probes.length === 0) fail(`no probe matches '${positionals[0]}'; try 'tsprobe list'`);
  console.log(
    values.json ? JSON.stringify(probes, null, 2) : formatListing(probes, !!values.verbose),
  );
} else {
  fail(`unknown command '${command}'; run 'tsprobe --help' for the list`);
}
