/**
 * execsnoop and tcpconnect against commands whose command lines and connections are known.
 */
import { deepStrictEqual as equal, ok } from "node:assert/strict";
import { eventsOf } from "../fixtures/records.ts";
import { recipe } from "../fixtures/subprocess.ts";

interface Exec {
  pid: number;
  ppid: number;
  comm: string;
  filename: string;
  argv: string[];
}

Deno.test("execsnoop: a program's whole command line, arguments with spaces kept whole", async () => {
  const r = await recipe(
    "execsnoop",
    "--format",
    "ndjson",
    "-c",
    "/bin/echo one 'two words' '' three > /dev/null",
  );
  equal(r.code, 0, r.stderr);
  const events = eventsOf<Exec>(r.stdout, "ndjson", "exec");
  const echo = events.find((e) => e.comm === "echo");
  const sh = events.find((e) => e.comm === "sh");
  ok(echo && sh, r.stdout);
  equal(echo.argv, ["/bin/echo", "one", "two words", "", "three"]);
  equal(echo.filename, "/bin/echo");
  // Its parent is the shell the recipe ran the command with, itself an exec seen first.
  equal(echo.ppid, sh.pid);
});

Deno.test("tcpconnect: each connection a command starts, IPv4 and IPv6, with printable addresses", async () => {
  const v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const v6 = Deno.listen({ hostname: "::1", port: 0 });
  try {
    const connect = (host: string, port: number) =>
      `IO::Socket::IP->new(PeerHost => q(${host}), PeerPort => ${port}) or die;`;
    const script = `use IO::Socket::IP; for (1..3) { ${connect("127.0.0.1", v4.addr.port)} } ` +
      connect("::1", v6.addr.port);
    const r = await recipe("tcpconnect", "--json", "-c", `perl -e '${script}'`);
    equal(r.code, 0, r.stderr);
    const perl = eventsOf<
      { comm: string; ip: number; saddr: string; daddr: string; dport: number }
    >(
      r.stdout,
      "json",
      "connect",
    ).filter((x) => x.comm === "perl");
    equal(
      perl.map((x) => [x.ip, x.daddr, x.dport]),
      [
        [4, "127.0.0.1", v4.addr.port],
        [4, "127.0.0.1", v4.addr.port],
        [4, "127.0.0.1", v4.addr.port],
        [6, "::1", v6.addr.port],
      ],
    );
    ok(perl.every((x) => x.saddr === (x.ip === 4 ? "127.0.0.1" : "::1")), r.stdout);
  } finally {
    v4.close();
    v6.close();
  }
});
