/**
 * tcpconnect: every TCP connection a process starts, with printable addresses, like BCC's tool
 * of that name: the moment a socket enters SYN_SENT (sock:inet_sock_set_state), in the
 * connecting process's context. IPv4 and IPv6.
 *
 *   tools/run scripts/tcpconnect.ts --demo               a built-in workload connecting to itself
 *   tools/run scripts/tcpconnect.ts -a -d 30s
 *   tools/run scripts/tcpconnect.ts -p 1234 --json
 *
 * JSON (--format json|ndjson): an `event` record named `connect` per connection started, its
 * data pid, comm, ip (4 or 6), saddr, daddr and dport.
 */
import { AF_INET, ntop, printable, tracepoint } from "../mod.ts";
import { recipe } from "../recipe.ts";

/** `TCP_SYN_SENT` and `IPPROTO_TCP`, as the kernel numbers them. */
const TCP_SYN_SENT = 2;
const IPPROTO_TCP = 6;

await recipe({
  name: "tcpconnect",
  description: "TCP connections started, with process, addresses and port (active opens).",
  examples: [
    "tcpconnect --demo         a built-in workload that connects to a local port",
    "tcpconnect -a -d 30s      every process for 30 seconds",
  ],
  demo: "perl -MIO::Socket::INET -e '$l = IO::Socket::INET->new(Listen => 1, " +
    "LocalAddr => q(127.0.0.1:0)) or die; IO::Socket::INET->new(PeerAddr => q(127.0.0.1), " +
    "PeerPort => $l->sockport) for 1..3'",
  setup(o) {
    if (!o.json) {
      console.log(
        `${"PID".padStart(7)} ${"COMM".padEnd(16)} IP ${"SADDR".padEnd(39)} ` +
          `${"DADDR".padEnd(39)} DPORT`,
      );
    }
    tracepoint("sock:inet_sock_set_state")
      .where((e, p) => e.args.newstate === p.synSent && e.args.protocol === p.tcp, {
        synSent: TCP_SYN_SENT,
        tcp: IPPROTO_TCP,
      })
      .on((e) => {
        const v4 = e.args.family === AF_INET;
        const row = {
          pid: e.pid,
          comm: e.comm,
          ip: v4 ? 4 : 6,
          saddr: ntop(v4 ? e.args.saddr : e.args.saddr_v6),
          daddr: ntop(v4 ? e.args.daddr : e.args.daddr_v6),
          dport: e.args.dport,
        };
        if (o.records) o.records.event("connect", row);
        else {
          console.log(
            `${String(row.pid).padStart(7)} ${printable(row.comm).padEnd(16)} ${row.ip}  ` +
              `${row.saddr.padEnd(39)} ${row.daddr.padEnd(39)} ${row.dport}`,
          );
        }
      });
  },
});
