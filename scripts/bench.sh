#!/usr/bin/env bash
# Benchmark rawscan against nmap and masscan in a private network-namespace
# lab, and check every tool's accuracy against the lab's truth.
#
#   sudo scripts/bench.sh
#
# Environment:
#   N=5               runs per tool (median wall time is reported)
#   RAWSCAN_ARGS=""   extra arguments for rawscan (e.g. "--rate 50000")
#   RAWSCAN_BIN=...   binary to use (default: cargo build --release)
#   TOOLS="rawscan nmap masscan"   which tools to run
#
# Lab: scanner namespace 198.18.0.1 <-veth-> target namespace 198.18.0.2, no
# default route anywhere, unique names rs-<pid>-b-{s,t}, removed on exit.  The
# only address ever scanned is 198.18.0.2 inside the target namespace.  Runs
# hold /tmp/rawscan-lab.lock (as the Rust lab tests do), so benches and lab
# tests never overlap on the 2 cores.
#
# Layout (to extend, e.g. with UDP): setup_* build the target side of a
# scenario and write its truth file; run_<tool>_<proto> run one scan and
# write "port state" lines; bench_tool times N runs of one tool and checks each
# against the truth; scenario_* tie them together; main picks scenarios.
set -euo pipefail

N=${N:-5}
RAWSCAN_ARGS=${RAWSCAN_ARGS:-}
TOOLS=${TOOLS:-"rawscan nmap masscan"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

SCANNER_IP=198.18.0.1
TARGET_IP=198.18.0.2
ID="rs-$$-b"
S="$ID-s"   # scanner namespace, and its veth end
T="$ID-t"   # target namespace, and its veth end
NFT_TABLE=rawscan_lab

# Target set-up of the TCP scenario (same shape as tests/lab_tcp.rs).
TCP_OPEN=(1 22 80 443 1999 8080 31337 65535)
TCP_DROPPED=(81 1500 40000)
TCP_ADMIN=113

WORK=""
LISTENER_PID=""
declare -A MEDIAN=()

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

# --------------------------------------------------------------------------
# Lab
# --------------------------------------------------------------------------

cleanup() {
    local rc=$?
    if [ -n "$LISTENER_PID" ]; then
        kill "$LISTENER_PID" 2>/dev/null || true
        wait "$LISTENER_PID" 2>/dev/null || true
    fi
    ip netns del "$S" 2>/dev/null || true
    ip netns del "$T" 2>/dev/null || true
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$rc"
}

# Namespaces named rs-<pid>-<tag>-{s,t} whose process is gone (killed runs of
# this script or of the Rust lab tests).
cleanup_stale() {
    local ns pid
    for ns in $(ip netns list | awk '{print $1}'); do
        if [[ $ns =~ ^rs-([0-9]+)-[a-z0-9]+-[st]$ ]]; then
            pid=${BASH_REMATCH[1]}
            if [ ! -e "/proc/$pid" ]; then
                log "removing leftover namespace $ns"
                ip netns del "$ns" 2>/dev/null || true
            fi
        fi
    done
}

lab_up() {
    cleanup_stale
    ip netns add "$S"
    ip netns add "$T"
    # Both veth ends are created directly inside the lab namespaces.
    ip link add "$S" netns "$S" type veth peer name "$T" netns "$T"
    ip -n "$S" addr add "$SCANNER_IP/24" dev "$S"
    ip -n "$T" addr add "$TARGET_IP/24" dev "$T"
    local ns
    for ns in "$S" "$T"; do
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$ns" up
        ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 || true
        if [ -n "$(ip -n "$ns" -4 route show default)" ]; then
            die "namespace $ns has a default route"
        fi
    done
    ip netns exec "$T" sysctl -q -w net.ipv4.icmp_ratelimit=0
    ip netns exec "$T" nft -f - <<EOF
table inet $NFT_TABLE {
    chain input { type filter hook input priority 0; policy accept; }
    chain output { type filter hook output priority 0; policy accept; }
}
EOF
}

mac_of() { # ns ifname
    ip -n "$1" -o link show "$2" | awk '{for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1)}'
}

# TCP listeners in the target namespace: one python process, accepting and
# closing connections so a connect scan never fills a backlog.
tcp_listen() { # ports...
    local ready="$WORK/listener.ready"
    ip netns exec "$T" python3 - "$ready" "$@" <<'EOF' &
import select, socket, sys
ready, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
socks = []
for p in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p))
    s.listen(1024)
    s.setblocking(False)
    socks.append(s)
open(ready, "w").close()
while True:
    for s in select.select(socks, [], [])[0]:
        try:
            s.accept()[0].close()
        except OSError:
            pass
EOF
    LISTENER_PID=$!
    local i
    for i in $(seq 100); do
        [ -e "$ready" ] && return 0
        kill -0 "$LISTENER_PID" 2>/dev/null || die "listener failed"
        sleep 0.05
    done
    die "listener not ready"
}

nft_target() { ip netns exec "$T" nft "$@"; }

# --------------------------------------------------------------------------
# Helpers: truth, parsing, comparison (python3)
# --------------------------------------------------------------------------

write_helper() {
    cat >"$WORK/helper.py" <<'EOF'
import re, sys

def truth(out, open_, dropped, admin):
    st = {p: "closed" for p in range(1, 65536)}
    for p in open_: st[p] = "open"
    for p in dropped + admin: st[p] = "filtered"
    with open(out, "w") as f:
        for p in range(1, 65536):
            f.write(f"{p} {st[p]}\n")

def parse_rawscan(path, proto):
    """rawscan normal output -> {port: state} for every scanned port."""
    rows, groups = {}, []
    for line in open(path, errors="replace"):
        m = re.match(r"^(\d+)/(tcp|udp)\s+(\S+)\s+(\S+)(?:\s+(.+))?$", line.rstrip())
        if m and m.group(2) == proto:
            rows[int(m.group(1))] = m.group(3)
        m = re.match(r"^Not shown: (.*)$", line.strip())
        if m:
            for g in re.split(r",\s*(?![^()]*\))", m.group(1)):
                w = g.split()
                if len(w) >= 4 and w[2] == proto:
                    groups.append((int(w[0]), w[1]))
    return rows, groups

def parse_nmap_grep(path, proto):
    rows, groups = {}, []
    for line in open(path, errors="replace"):
        m = re.search(r"Ports: (.*?)(\tIgnored State: (\S+) \((\d+)\))?$", line.rstrip("\n"))
        if not m:
            continue
        for item in m.group(1).split(", "):
            f = item.split("/")
            if len(f) > 2 and f[2] == proto:
                rows[int(f[0])] = f[1]
        if m.group(3):
            groups.append((int(m.group(4)), m.group(3)))
    return rows, groups

def parse_masscan(path, proto):
    rows = {}
    for line in open(path, errors="replace"):
        w = line.split()
        if len(w) >= 3 and w[0] == "open" and w[1] == proto:
            rows[int(w[2])] = "open"
    return rows, None

def compare(truth_path, fmt, path, proto):
    tr = {}
    for line in open(truth_path):
        p, s = line.split()
        tr[int(p)] = s
    rows, groups = {"rawscan": parse_rawscan, "nmap": parse_nmap_grep,
                    "masscan": parse_masscan}[fmt](path, proto)
    rows.pop(0, None)  # masscan scans port 0 too
    problems = []
    got_open = {p for p, s in rows.items() if s == "open"}
    want_open = {p for p, s in tr.items() if s == "open"}
    if got_open != want_open:
        problems.append(f"open: missing {sorted(want_open - got_open)[:10]} "
                        f"extra {sorted(got_open - want_open)[:10]}")
    if groups is not None:  # tools that report every state
        unlisted = [p for p in tr if p not in rows]
        if sum(c for c, _ in groups) != len(unlisted) or (unlisted and len(groups) != 1):
            problems.append(f"'Not shown' {groups} does not cover {len(unlisted)} unlisted ports")
        else:
            got = dict(rows)
            for p in unlisted:
                got[p] = groups[0][1]
            for state in ("filtered", "closed"):
                g = {p for p, s in got.items() if s == state}
                w = {p for p, s in tr.items() if s == state}
                if g != w:
                    problems.append(f"{state}: missing {sorted(w - g)[:10]} "
                                    f"extra {sorted(g - w)[:10]} ({len(g)} vs {len(w)})")
    print("exact" if not problems else "WRONG " + "; ".join(problems))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "truth":
        lists = [[int(x) for x in a.split(",") if x] for a in sys.argv[3:6]]
        truth(sys.argv[2], *lists)
    elif cmd == "compare":
        compare(*sys.argv[2:6])
EOF
}

csv() { local IFS=,; echo "$*"; }

median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# --------------------------------------------------------------------------
# Tools: run_<tool>_<proto> OUTFILE -> the tool's output in OUTFILE; the
# matching parser format is parse_fmt_<tool>.
# --------------------------------------------------------------------------

RAWSCAN=""

build_rawscan() {
    if [ -n "${RAWSCAN_BIN:-}" ]; then
        RAWSCAN=$RAWSCAN_BIN
    else
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet)
        RAWSCAN="$ROOT/target/release/rawscan"
    fi
    [ -x "$RAWSCAN" ] || die "no rawscan binary at $RAWSCAN"
}

run_rawscan_tcp() { # outfile
    # shellcheck disable=SC2086  # RAWSCAN_ARGS is split on purpose
    ip netns exec "$S" timeout 300 "$RAWSCAN" -sS -p- -n $RAWSCAN_ARGS "$TARGET_IP" >"$1" 2>"$1.err"
}

run_nmap_tcp() {
    ip netns exec "$S" timeout 300 nmap -sS -p- -n -Pn -T4 -oG - "$TARGET_IP" >"$1" 2>"$1.err"
}

run_masscan_tcp() {
    # masscan sends from its own stack: it needs the veth MACs.  Its receive
    # thread blocks in pcap on an idle link and then hangs at exit ("waiting
    # -N-secs"), so a trickle of lab-internal packets (one UDP datagram per
    # 100 ms from the target to the scanner's discard port) keeps it moving,
    # and timeout (SIGINT, then SIGKILL) bounds it anyway (status 124 is
    # tolerated; -oL is only written at exit, so a killed run finds nothing).
    local smac tmac rc=0 ticker
    smac=$(mac_of "$S" "$S")
    tmac=$(mac_of "$T" "$T")
    ip netns exec "$T" bash -c \
        "while :; do echo x >/dev/udp/$SCANNER_IP/9; sleep 0.1; done" 2>/dev/null &
    ticker=$!
    ip netns exec "$S" timeout -s INT -k 5 60 masscan -p0-65535 "$TARGET_IP" --rate 100000 \
        --adapter "$S" --adapter-ip "$SCANNER_IP" --adapter-mac "$smac" \
        --router-mac "$tmac" --wait 1 -oL "$1" >"$1.out" 2>"$1.err" || rc=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    touch "$1"
    [ "$rc" = 0 ] || [ "$rc" = 124 ]
}

# bench_tool TOOL PROTO TRUTH: N timed runs, accuracy of each, median time.
bench_tool() {
    local tool=$1 proto=$2 truth=$3 i t0 t1 out verdict exact=0
    local times=()
    for i in $(seq "$N"); do
        out="$WORK/$tool-$proto-$i.txt"
        t0=$(date +%s.%N)
        if ! "run_${tool}_${proto}" "$out"; then
            echo "  $tool run $i FAILED:" >&2
            cat "$out.err" >&2 || true
            continue
        fi
        t1=$(date +%s.%N)
        times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')")
        verdict=$(python3 "$WORK/helper.py" compare "$truth" "$tool" "$out" "$proto")
        [ "$verdict" = exact ] && exact=$((exact + 1))
        printf '  %-8s run %d: %7.3fs  %s\n' "$tool" "$i" "${times[-1]}" "$verdict"
    done
    if [ "${#times[@]}" -eq 0 ]; then
        MEDIAN[$tool-$proto]=""
        printf '%-8s %-4s no successful run\n' "$tool" "$proto"
        return
    fi
    MEDIAN[$tool-$proto]=$(printf '%s\n' "${times[@]}" | median)
    local scope="all states"
    [ "$tool" = masscan ] && scope="open ports only"
    printf '%-8s %-4s median %7.3fs over %d runs; exact (%s) in %d/%d runs\n' \
        "$tool" "$proto" "${MEDIAN[$tool-$proto]}" "${#times[@]}" "$scope" "$exact" "$N"
}

ratios() { # proto
    local base=${MEDIAN[rawscan-$1]:-} tool m
    [ -n "$base" ] || return 0
    for tool in $TOOLS; do
        [ "$tool" = rawscan ] && continue
        m=${MEDIAN[$tool-$1]:-}
        [ -n "$m" ] || continue
        awk -v a="$m" -v b="$base" -v t="$tool" -v p="$1" \
            'BEGIN {printf "ratio %s/rawscan (%s): %.2fx\n", t, p, a / b}'
    done
}

# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

setup_tcp() { # -> truth file path on stdout
    tcp_listen "${TCP_OPEN[@]}"
    nft_target add rule inet "$NFT_TABLE" input tcp dport "{ $(csv "${TCP_DROPPED[@]}" | sed 's/,/, /g') }" drop
    nft_target add rule inet "$NFT_TABLE" input tcp dport "$TCP_ADMIN" reject with icmp type admin-prohibited
    python3 "$WORK/helper.py" truth "$WORK/truth-tcp.txt" \
        "$(csv "${TCP_OPEN[@]}")" "$(csv "${TCP_DROPPED[@]}")" "$TCP_ADMIN"
}

scenario_tcp_full() {
    setup_tcp
    echo "== TCP, all 65535 ports: open ${TCP_OPEN[*]}; dropped ${TCP_DROPPED[*]}; admin-prohibited $TCP_ADMIN; rest closed"
    local tool
    for tool in $TOOLS; do
        bench_tool "$tool" tcp "$WORK/truth-tcp.txt"
    done
    ratios tcp
}

main() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
    local tool
    for tool in ip nft python3 timeout flock; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    for tool in $TOOLS; do
        [ "$tool" = rawscan ] || command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    case " $TOOLS " in *" rawscan "*) build_rawscan ;; esac

    exec 9>/tmp/rawscan-lab.lock
    flock 9
    WORK=$(mktemp -d /tmp/rawscan-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    write_helper
    lab_up
    scenario_tcp_full
}

main "$@"
