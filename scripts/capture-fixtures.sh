#!/usr/bin/env bash
# Capture the wire fixtures in src/wire/fixtures/ from real Linux traffic.
#
# Run once, as root, from the repository root:  bash scripts/capture-fixtures.sh
# It is not part of CI: the captured bytes are committed, and the unit tests
# in src/wire/fixtures.rs check every field against what this script sent
# (the constants at the top of scripts/capture_fixtures.py).
#
# Lab (the house rules: 198.18.0.0/15 and 2001:db8::/32 only, namespaces of
# our own, removed on exit, serialised by /tmp/rawscan-lab.lock):
#
#   scanner ns  veth-s 198.18.0.1/24 2001:db8::1/64   02:00:00:00:00:01
#      |
#   target ns   veth-t 198.18.0.2/24 2001:db8::2/64   02:00:00:00:00:02
#               (forwards; TCP 22 and UDP 7 listen; nftables rejects)
#      |        veth-tf 198.18.2.254/24 2001:db8:2::fe/64, MTU 1280
#   far ns      veth-ft 198.18.2.1/24 2001:db8:2::1/64, MTU 1280
#
# In the scanner namespace, scripts/capture_fixtures.py sends hand-made
# frames on an AF_PACKET socket (its own encoder, independent of rawscan's)
# and saves the first frame that answers each one, as received.
# Checksum offload is off on the veths so that captured checksums are whole.
set -euo pipefail
cd "$(dirname "$0")/.."

out=src/wire/fixtures
tag="fx$$"
S="rs-${tag}-s" T="rs-${tag}-t" F="rs-${tag}-f"

exec 9>/tmp/rawscan-lab.lock
flock 9

cleanup() {
    if [ -n "${srv:-}" ]; then
        kill "$srv" 2>/dev/null || true
        wait "$srv" 2>/dev/null || true
    fi
    for ns in "$S" "$T" "$F"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

for ns in "$S" "$T" "$F"; do ip netns add "$ns"; done
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ip link add veth-s netns "$S" type veth peer name veth-t netns "$T"
ip link add veth-tf netns "$T" type veth peer name veth-ft netns "$F"

for ns in "$S" "$T" "$F"; do
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    nsx "$ns" ip link set lo up
done

nsx "$S" ip link set veth-s address 02:00:00:00:00:01
nsx "$T" ip link set veth-t address 02:00:00:00:00:02
nsx "$S" ip addr add 198.18.0.1/24 dev veth-s
nsx "$S" ip -6 addr add 2001:db8::1/64 dev veth-s nodad
nsx "$T" ip addr add 198.18.0.2/24 dev veth-t
nsx "$T" ip -6 addr add 2001:db8::2/64 dev veth-t nodad
nsx "$T" ip link set veth-tf mtu 1280
nsx "$F" ip link set veth-ft mtu 1280
nsx "$T" ip addr add 198.18.2.254/24 dev veth-tf
nsx "$T" ip -6 addr add 2001:db8:2::fe/64 dev veth-tf nodad
nsx "$F" ip addr add 198.18.2.1/24 dev veth-ft
nsx "$F" ip -6 addr add 2001:db8:2::1/64 dev veth-ft nodad
for pair in "$S veth-s" "$T veth-t" "$T veth-tf" "$F veth-ft"; do
    set -- $pair
    nsx "$1" ip link set "$2" up
    nsx "$1" ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true
done

# The target is also a router, with an unreachable prefix per family.
nsx "$T" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
nsx "$T" ip route add unreachable 198.18.1.0/24
nsx "$T" ip -6 route add unreachable 2001:db8:1::/64
# No ICMP rate limit: every probe gets its error.
nsx "$T" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_ratemask=0 \
    net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000 \
    net.ipv6.icmp.ratelimit=0
nsx "$F" ip route add default via 198.18.2.254
nsx "$F" ip -6 route add default via 2001:db8:2::fe

# Rejections, one ICMP type/code per port (see capture_fixtures.py).
nsx "$T" nft -f - <<'NFT'
table inet fx {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 81 reject with icmpx type admin-prohibited
        meta nfproto ipv4 udp dport 30000 reject with icmp type net-unreachable
        meta nfproto ipv4 udp dport 30001 reject with icmp type host-unreachable
        meta nfproto ipv4 udp dport 30002 reject with icmp type prot-unreachable
        meta nfproto ipv4 udp dport 30003 reject with icmp type port-unreachable
        meta nfproto ipv4 udp dport 30009 reject with icmp type net-prohibited
        meta nfproto ipv4 udp dport 30010 reject with icmp type host-prohibited
        meta nfproto ipv4 udp dport 30013 reject with icmp type admin-prohibited
        meta nfproto ipv6 udp dport 30100 reject with icmpv6 type no-route
        meta nfproto ipv6 udp dport 30101 reject with icmpv6 type admin-prohibited
        meta nfproto ipv6 udp dport 30103 reject with icmpv6 type addr-unreachable
        meta nfproto ipv6 udp dport 30104 reject with icmpv6 type port-unreachable
        meta nfproto ipv6 udp dport 30105 reject with icmpv6 type policy-fail
        meta nfproto ipv6 udp dport 30106 reject with icmpv6 type reject-route
    }
}
NFT

# Services in the target: TCP 22 and UDP 7 (echo), both families.
# (`ip netns exec` execs python, so $! is the server itself; it must not
# inherit the lock's descriptor.)
ip netns exec "$T" python3 scripts/capture_fixtures.py serve 9>&- &
srv=$!
sleep 1

mkdir -p "$out"
nsx "$S" python3 scripts/capture_fixtures.py capture "$out"
