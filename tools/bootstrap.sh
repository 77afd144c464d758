# shellcheck shell=bash
# Sourced by tools/run, tools/probe and tools/test: checks the privilege tracing needs
# (require_privilege), then makes sure a pinned Deno, libbpf and (for tests) the workload
# tools are present, installing what is missing, and exports DENO.
DENO_VERSION=2.9.6
TSPROBE_HOME=${TSPROBE_HOME:-$HOME/.cache/tsprobe}

say() { echo "bootstrap: $*" >&2; }

# has_cap N: whether this shell holds capability N in its effective set (/proc/self/status,
# read at once by mapfile: read's byte-at-a-time loop took about 1 ms).
has_cap() {
  local lines line
  mapfile -t lines </proc/self/status
  for line in "${lines[@]}"; do
    [[ $line = CapEff:* ]] && return $(((16#${line#CapEff:$'\t'} >> $1 & 1) == 0))
  done
  return 1
}

# require_privilege NAME tracing|admin: exits 1 with one line when this user lacks what NAME
# needs, before anything is installed. Tracing loads BPF programs: CAP_BPF and CAP_PERFMON
# (or CAP_SYS_ADMIN, which root has). admin: the tests also make loop devices and mount
# filesystems, which take CAP_SYS_ADMIN.
require_privilege() {
  local name=$1 need=$2 who="not root, and" fix="run it as root: sudo $1"
  has_cap 21 && return 0 # CAP_SYS_ADMIN
  # Root without them: a container or a bounding set took them away.
  [ "$(id -u)" -eq 0 ] && who="root, but" fix="give it the capabilities (docker: --privileged)"
  if [ "$need" = admin ]; then
    echo "$name: $who without CAP_SYS_ADMIN: the tests load BPF programs, make loop devices" \
      "and mount filesystems; $fix" >&2
    exit 1
  fi
  has_cap 38 && has_cap 39 && return 0 # CAP_PERFMON, CAP_BPF
  echo "$name: $who without CAP_BPF and CAP_PERFMON: loading BPF programs needs them; $fix" >&2
  exit 1
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}; run as root or install them with apt-get"
    return 1
  fi
  say "installing ${missing[*]} with apt-get"
  if [ ! -f /var/lib/apt/lists/.tsprobe-updated ]; then
    apt-get update -qq >&2 && touch /var/lib/apt/lists/.tsprobe-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_deno() {
  if command -v deno >/dev/null 2>&1 && deno --version | grep -q "^deno $DENO_VERSION "; then
    DENO=$(command -v deno)
    return 0
  fi
  local dir="$TSPROBE_HOME/deno-$DENO_VERSION"
  DENO="$dir/node_modules/@deno/linux-x64-glibc/deno"
  if [ ! -x "$DENO" ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm || return 1
    # A user who may trace (CAP_BPF) may still have a HOME they cannot write (sudo -u keeps it).
    if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
      say "cannot install deno $DENO_VERSION into $dir (not writable): set TSPROBE_HOME to a" \
        "directory you can write, or put deno $DENO_VERSION on the PATH"
      return 1
    fi
    say "installing deno $DENO_VERSION from the npm registry into $dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "deno@$DENO_VERSION" >&2 || return 1
  fi
  [ -x "$DENO" ] || { say "deno was not installed at $DENO"; return 1; }
}

ensure_tracefs() {
  [ -d /sys/kernel/tracing/events ] && return 0
  # Only root may mount it; probe tells the others what they miss (unmounted, or unreadable).
  [ "$(id -u)" -eq 0 ] || return 0
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
    say "cannot mount tracefs at /sys/kernel/tracing (tracepoint probes will not work)"
}

# What every Deno started from tools/ runs with, whatever the environment says: V8 rejects a
# code cache made under other flags, and Deno then compiles the module again, so the commands
# sharing a cache must agree. --no-lazy: V8 compiles all of a module when it loads it, so that
# Deno's code cache holds every function and a run does not compile each one again on its first
# call (probe -e attached 3-5 ms sooner). --expose-gc: the metrics server collects after a
# scrape, and would otherwise import Node's v8 and vm modules to reach V8's gc (2 MB resident).
# --max-semi-space-size=2 (MB): a young generation that does not grow to what a scrape of 10,000
# series allocates; with it a metrics agent's peak stayed under 80 MB, which --no-lazy's 3 MB
# had pushed over (bench/metrics.ts), and the event stream kept its rate (bench/overhead.ts).
DENO_V8_FLAGS=--no-lazy,--expose-gc,--max-semi-space-size=2
export_env() {
  export DENO DENO_NO_UPDATE_CHECK=1 DENO_V8_FLAGS
}

# bootstrap [test] [vm]: everything a run needs, plus the test workload tools with "test", plus
# QEMU and Debian 12's stock kernel with "vm" (tools/test --kernel 6.1).
bootstrap() {
  # What a run needs was all there last time, and still is: about 100 ms less per command
  # than asking dpkg and deno, where probe -e takes about a bpftrace's time to attach.
  if [ $# -eq 0 ] && ready; then
    install_probe
    export_env
    return 0
  fi
  local pkgs=(libbpf1 libaio1)
  for what in "$@"; do
    case $what in
      test) pkgs+=(bpftool fio xfsprogs e2fsprogs util-linux kmod perl nfs-kernel-server rpcbind gcc libc6-dev systemtap-sdt-dev python3 prometheus) ;;
      vm) pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod e2fsprogs) ;;
    esac
  done
  apt_install "${pkgs[@]}" || return 1
  ensure_deno || return 1
  ensure_tracefs
  install_probe
  export_env
  # Remembered for ready(), with Deno's modification time as its own; a HOME that cannot be
  # written only costs the checks next time.
  { mkdir -p "$TSPROBE_HOME" && echo "$DENO" >"$READY" && touch -r "$DENO" "$READY"; } \
    2>/dev/null || true
}

READY="$TSPROBE_HOME/ready-deno-$DENO_VERSION"

# ready: whether the last bootstrap's Deno (the same file: a replaced one may be another
# version), libbpf, libaio and tracefs are still in place (files, not package queries); sets DENO.
# Bash's own tests only, no process: Deno is unchanged when it is neither newer nor older than
# $READY, which bootstrap gave Deno's modification time.
ready() {
  local libs
  [ -f "$READY" ] && read -r DENO <"$READY" && [ -x "$DENO" ] || return 1
  [ "$DENO" -nt "$READY" ] || [ "$DENO" -ot "$READY" ] && return 1
  libs=(/usr/lib/*-linux-gnu/libbpf.so.1 /usr/lib/*-linux-gnu/libaio.so.1)
  [ -e "${libs[0]}" ] && [ -e "${libs[1]}" ] && [ -d /sys/kernel/tracing/events ]
}

# Installs /usr/local/bin/probe, so that `probe -e ...` works from anywhere: a launcher naming
# this checkout and sourcing its tools/probe. A symlink made every start ask readlink where the
# checkout is (1 ms of probe -e's start); the launcher's bash is this one, found once.
# TSPROBE_BIN: another directory for it (the tests').
install_probe() {
  local src=${BASH_SOURCE[0]} root target=${TSPROBE_BIN:-/usr/local/bin}/probe lines quoted
  root=${src%/tools/bootstrap.sh}
  # Sourced by a relative path (tools/test sources tools/bootstrap.sh): ask where that is.
  [[ $root = /* ]] || root=$(cd "$(dirname "$src")/.." && pwd) || return 0
  printf -v quoted %q "$root"
  # mapfile and printf: no process on the fast path.
  mapfile -t lines <"$target" 2>/dev/null || true
  [ "${lines[2]:-}" = "probe_root=$quoted" ] && return 0
  [ -w "${target%/probe}" ] || return 0
  # A new file moved over the old one: writing through a symlink would overwrite tools/probe.
  if printf '%s\n' "#!$BASH" "# tsprobe's probe command (tools/bootstrap.sh installed it): this checkout's." \
    "probe_root=$quoted" '. "$probe_root/tools/probe"' >"$target.$$" &&
    chmod 755 "$target.$$" && mv -f "$target.$$" "$target"; then
    say "installed the probe command ($target)"
  else
    rm -f "$target.$$"
  fi
  return 0
}
