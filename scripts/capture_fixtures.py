#!/usr/bin/env python3
"""Capture rawscan's wire fixtures from real Linux traffic (see
capture-fixtures.sh, which builds the namespaces and runs this twice:
`serve` in the target namespace, `capture DIR` in the scanner namespace).

Probes are encoded here, by hand, independently of rawscan's own emitters,
and sent as Ethernet frames on an AF_PACKET socket; the first frame that
answers each one is saved as received (Ethernet header first) to
DIR/<name>.bin, and DIR/MANIFEST lists what was sent for each.

The constants below are mirrored in src/wire/fixtures.rs, whose tests check
every field of every fixture against them."""

import os
import select
import socket
import struct
import sys
import threading
import time

SCANNER_MAC = bytes.fromhex("020000000001")
TARGET_MAC = bytes.fromhex("020000000002")
S4, T4 = "198.18.0.1", "198.18.0.2"
FAR4, UNREACH4 = "198.18.2.1", "198.18.1.1"
S6, T6 = "2001:db8::1", "2001:db8::2"
FAR6, UNREACH6 = "2001:db8:2::1", "2001:db8:1::1"
TCP_OPEN, TCP_CLOSED, TCP_REJECTED = 22, 23, 81
UDP_ECHO = 7

ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD
PACKET_OUTGOING = 4


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def a4(s):
    return socket.inet_pton(socket.AF_INET, s)


def a6(s):
    return socket.inet_pton(socket.AF_INET6, s)


def is6(addr):
    return ":" in addr


def pseudo(src, dst, proto, length):
    if is6(src):
        return a6(src) + a6(dst) + struct.pack("!I3xB", length, proto)
    return a4(src) + a4(dst) + struct.pack("!xBH", proto, length)


def ip_packet(src, dst, proto, payload, ttl=64, ident=0, flow=0):
    """An IPv4 (DF set) or IPv6 packet around `payload`."""
    if is6(src):
        w = (6 << 28) | (flow & 0xFFFFF)
        return struct.pack("!IHBB", w, len(payload), proto, ttl) + a6(src) + a6(dst) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, ttl, proto, 0, a4(src), a4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def tcp_syn(src, dst, sport, dport, seq):
    """A SYN shaped like rawscan's: window 1024, one MSS option of 1460."""
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 1024, 0, 0) + bytes([2, 4, 0x05, 0xB4])
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp4(ty, code, rest):
    m = struct.pack("!BBH", ty, code, 0) + rest
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, ty, code, rest):
    m = struct.pack("!BBH", ty, code, 0) + rest
    c = csum(pseudo(src, dst, 58, len(m)) + m)
    return m[:2] + struct.pack("!H", c) + m[4:]


def eth(dst_mac, ethertype, payload):
    return dst_mac + SCANNER_MAC + struct.pack("!H", ethertype) + payload


def eth_ip(pkt):
    return eth(TARGET_MAC, ETH_P_IPV6 if pkt[0] >> 4 == 6 else ETH_P_IP, pkt)


# ---------------------------------------------------------------------------
# Parsing just enough of a received frame to recognise an answer.

def l3(frame):
    """(ethertype, ip payload proto, transport bytes, ip bytes) of a frame."""
    et = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if et == ETH_P_IP:
        ihl = (ip[0] & 15) * 4
        return et, ip[9], ip[ihl:], ip
    if et == ETH_P_IPV6:
        return et, ip[6], ip[40:], ip
    return et, None, ip, ip


def answers_tcp(sport, dport):
    def f(frame):
        _, proto, t, _ = l3(frame)
        return proto == 6 and struct.unpack("!HH", t[:4]) == (dport, sport)
    return f


def answers_udp(sport, dport):
    def f(frame):
        _, proto, t, _ = l3(frame)
        return proto == 17 and struct.unpack("!HH", t[:4]) == (dport, sport)
    return f


def icmp_quoting(icmp_proto, ty, sport):
    """An ICMP (1) or ICMPv6 (58) error of type `ty` quoting source port `sport`."""
    def f(frame):
        et, proto, t, _ = l3(frame)
        if proto != icmp_proto or t[0] != ty:
            return False
        q = t[8:]
        if et == ETH_P_IP:
            qt = q[(q[0] & 15) * 4:]
        else:
            qt = q[40:]
        return len(qt) >= 2 and struct.unpack("!H", qt[:2])[0] == sport
    return f


def icmp_type(icmp_proto, ty):
    def f(frame):
        _, proto, t, _ = l3(frame)
        return proto == icmp_proto and t[0] == ty
    return f


def arp_op(op):
    def f(frame):
        et, _, p, _ = l3(frame)
        return et == ETH_P_ARP and struct.unpack("!H", p[6:8])[0] == op
    return f


# ---------------------------------------------------------------------------

class Capture:
    def __init__(self, out):
        self.out = out
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("veth-s", 0))
        self.manifest = []

    def drain(self):
        while select.select([self.sock], [], [], 0.05)[0]:
            self.sock.recv(65535)

    def wait(self, preds, timeout=2.0, outgoing=False):
        """First frame for each (name, predicate); {name: frame}."""
        got = {}
        end = time.time() + timeout
        while len(got) < len(preds) and time.time() < end:
            r, _, _ = select.select([self.sock], [], [], max(0.0, end - time.time()))
            if not r:
                continue
            frame, addr = self.sock.recvfrom(65535)
            if (addr[2] == PACKET_OUTGOING) != outgoing:
                continue
            for name, pred in preds:
                if name not in got:
                    try:
                        ok = pred(frame)
                    except (IndexError, struct.error):
                        ok = False
                    if ok:
                        got[name] = frame
        return got

    def save(self, name, frame, what):
        with open(os.path.join(self.out, name + ".bin"), "wb") as f:
            f.write(frame)
        self.manifest.append("%s.bin: %s" % (name, what))
        print("captured %-34s %4d bytes  %s" % (name, len(frame), what))

    def exchange(self, name, frame, pred, what, extra=()):
        self.drain()
        self.sock.send(frame)
        preds = [(name, pred)] + list(extra)
        got = self.wait(preds)
        for n, _ in preds:
            if n in got:
                self.save(n, got[n], what if n == name else "sent by the target's kernel during: " + what)
            elif n == name:
                print("MISSING %s (%s)" % (name, what), file=sys.stderr)
                self.missing = True

    def finish(self):
        with open(os.path.join(self.out, "MANIFEST"), "w") as f:
            f.write("\n".join(self.manifest) + "\n")


def capture(out):
    c = Capture(out)
    c.missing = False

    # Echo first: the target does not know our MAC yet, so its kernel asks
    # (ARP request, NDP neighbor solicitation) before it answers.
    data4 = b"rawscan fixture echo4"
    c.exchange("icmp4-echo-reply",
               eth_ip(ip_packet(S4, T4, 1, icmp4(8, 0, struct.pack("!HH", 0x4242, 7) + data4), ident=0x0101)),
               icmp_type(1, 0), "ICMP echo request id 0x4242 seq 7 data %r, IP ID 0x0101" % data4,
               extra=[("arp-request-kernel", arp_op(1))])
    data6 = b"rawscan fixture echo6"
    c.exchange("icmp6-echo-reply",
               eth_ip(ip_packet(S6, T6, 58, icmp6(S6, T6, 128, 0, struct.pack("!HH", 0x4646, 9) + data6), flow=0x10101)),
               icmp_type(58, 129), "ICMPv6 echo request id 0x4646 seq 9 data %r, flow 0x10101" % data6,
               extra=[("ndp-ns-kernel", icmp_type(58, 135))])

    # ICMP timestamp (RFC 792 type 13), originate 0x01020304.
    c.exchange("icmp4-timestamp-reply",
               eth_ip(ip_packet(S4, T4, 1, icmp4(13, 0, struct.pack("!HHIII", 0x4343, 8, 0x01020304, 0, 0)), ident=0x0102)),
               icmp_type(1, 14), "ICMP timestamp request id 0x4343 seq 8 originate 0x01020304")

    # ARP and NDP, asked by hand.
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, SCANNER_MAC, a4(S4), b"\0" * 6, a4(T4))
    c.exchange("arp-reply", eth(b"\xff" * 6, ETH_P_ARP, arp), arp_op(2),
               "ARP request who-has %s tell %s (%s)" % (T4, S4, SCANNER_MAC.hex(":")))
    snm = a6("ff02::1:ff00:2")
    ns = icmp6(S6, "ff02::1:ff00:2", 135, 0, b"\0" * 4 + a6(T6) + bytes([1, 1]) + SCANNER_MAC)
    ns_pkt = ip_packet(S6, "ff02::1:ff00:2", 58, ns, ttl=255)
    c.exchange("ndp-na", eth(bytes.fromhex("3333ff000002"), ETH_P_IPV6, ns_pkt), icmp_type(58, 136),
               "NDP neighbor solicitation for %s to %s, source link-layer option %s, hop limit 255"
               % (T6, socket.inet_ntop(socket.AF_INET6, snm), SCANNER_MAC.hex(":")))

    # SYN probes (rawscan's shape) to an open, a closed and a rejected port.
    for fam, src, dst in (("4", S4, T4), ("6", S6, T6)):
        for i, (port, seq, name) in enumerate(((TCP_OPEN, 0x5CA1AB1E, "synack"), (TCP_CLOSED, 0x0BADCAFE, "rst"),
                                               (TCP_REJECTED, 0x81818181, "admin-prohibited-tcp"))):
            sport = 40000 + port
            ident, flow = 0x1100 + i, 0x12340 + i
            pkt = ip_packet(src, dst, 6, tcp_syn(src, dst, sport, port, seq), ident=ident, flow=flow)
            if name == "admin-prohibited-tcp":
                n, pred = ("icmp%s-%s" % (fam, name), icmp_quoting(1 if fam == "4" else 58, 3 if fam == "4" else 1, sport))
            else:
                n, pred = ("tcp%s-%s" % (fam, name), answers_tcp(sport, port))
            c.exchange(n, eth_ip(pkt), pred,
                       "SYN %s:%d -> %s:%d seq 0x%08x window 1024 MSS 1460, IP ID 0x%04x / flow 0x%05x"
                       % (src, sport, dst, port, seq, ident, flow))

    # The kernel's own SYN and the SYN-ACK it gets (all of Linux's options).
    for fam, af, src, dst, sport in (("4", socket.AF_INET, S4, T4, 45000), ("6", socket.AF_INET6, S6, T6, 45001)):
        c.drain()
        s = socket.socket(af, socket.SOCK_STREAM)
        s.bind((src, sport))
        s.settimeout(2)
        s.connect((dst, TCP_OPEN))
        syn = c.wait([("syn", answers_tcp(TCP_OPEN, sport))], outgoing=True)
        s.close()
        if "syn" in syn:
            c.save("tcp%s-syn-kernel" % fam, syn["syn"], "the scanner kernel's SYN from connect() %s:%d -> %s:%d"
                   % (src, sport, dst, TCP_OPEN))
        c.drain()
    # The SYN-ACKs to those connects were consumed by the handshake; capture
    # one more with a listener-side view: a second connect, incoming side.
    for fam, af, src, dst, sport in (("4", socket.AF_INET, S4, T4, 45002), ("6", socket.AF_INET6, S6, T6, 45003)):
        c.drain()
        s = socket.socket(af, socket.SOCK_STREAM)
        s.bind((src, sport))
        s.settimeout(2)
        s.setblocking(False)
        try:
            s.connect((dst, TCP_OPEN))
        except BlockingIOError:
            pass
        got = c.wait([("synack", answers_tcp(sport, TCP_OPEN))])
        s.close()
        if "synack" in got:
            c.save("tcp%s-synack-kernel" % fam, got["synack"],
                   "the target kernel's SYN-ACK to a connect() from %s:%d to %s:%d" % (src, sport, dst, TCP_OPEN))

    # UDP: the echo service, a closed port, and one port per ICMP code.
    for fam, src, dst in (("4", S4, T4), ("6", S6, T6)):
        payload = b"rawscan fixture udp" + fam.encode()
        ident, flow = 0x0707, 0x70707
        c.exchange("udp%s-echo" % fam, eth_ip(ip_packet(src, dst, 17, udp(src, dst, 40007, UDP_ECHO, payload),
                                                         ident=ident, flow=flow)),
                   answers_udp(40007, UDP_ECHO),
                   "UDP %s:40007 -> %s:%d payload %r, IP ID 0x%04x / flow 0x%05x" % (src, dst, UDP_ECHO, payload, ident, flow))
        ident, flow = 0x4455, 0x44556
        c.exchange("icmp%s-port-unreach" % fam,
                   eth_ip(ip_packet(src, dst, 17, udp(src, dst, 41000, 33434, b""), ident=ident, flow=flow)),
                   icmp_quoting(1 if fam == "4" else 58, 3 if fam == "4" else 1, 41000),
                   "empty UDP %s:41000 -> %s:33434 (closed), IP ID 0x%04x / flow 0x%05x" % (src, dst, ident, flow))
    for code in (0, 1, 2, 3, 9, 10, 13):
        sport, dport, ident = 42000 + code, 30000 + code, 0x5500 + code
        c.exchange("icmp4-unreach-code%d" % code,
                   eth_ip(ip_packet(S4, T4, 17, udp(S4, T4, sport, dport, b"x"), ident=ident)),
                   icmp_quoting(1, 3, sport),
                   "UDP %s:%d -> %s:%d payload b'x', IP ID 0x%04x; nft rejects with ICMP 3/%d" % (S4, sport, T4, dport, ident, code))
    for code in (0, 1, 3, 4, 5, 6):
        sport, dport, flow = 42100 + code, 30100 + code, 0x55000 + code
        c.exchange("icmp6-unreach-code%d" % code,
                   eth_ip(ip_packet(S6, T6, 17, udp(S6, T6, sport, dport, b"x"), flow=flow)),
                   icmp_quoting(58, 1, sport),
                   "UDP %s:%d -> %s:%d payload b'x', flow 0x%05x; nft rejects with ICMPv6 1/%d" % (S6, sport, T6, dport, flow, code))

    # The target as a router: TTL 1, an unreachable prefix, a 1280-byte MTU.
    for fam, src, far, unreach, icmp_p, te, unr in (("4", S4, FAR4, UNREACH4, 1, 11, 3), ("6", S6, FAR6, UNREACH6, 58, 3, 1)):
        c.exchange("icmp%s-time-exceeded" % fam,
                   eth_ip(ip_packet(src, far, 17, udp(src, far, 43000, 33435, b""), ttl=1, ident=0x6601, flow=0x66001)),
                   icmp_quoting(icmp_p, te, 43000),
                   "empty UDP %s:43000 -> %s:33435 with TTL/hop limit 1, IP ID 0x6601 / flow 0x66001 (forwarded by %s)"
                   % (src, far, T4 if fam == "4" else T6))
        c.exchange("icmp%s-unreachable-route" % fam,
                   eth_ip(ip_packet(src, unreach, 17, udp(src, unreach, 43001, 33436, b""), ident=0x6602, flow=0x66002)),
                   icmp_quoting(icmp_p, unr, 43001),
                   "empty UDP %s:43001 -> %s:33436, IP ID 0x6602 / flow 0x66002 (an 'unreachable' route on the target)"
                   % (src, unreach))
        big = b"B" * 1400
        c.exchange("icmp%s-too-big" % fam,
                   eth_ip(ip_packet(src, far, 17, udp(src, far, 43002, 33437, big), ident=0x6603, flow=0x66003)),
                   icmp_quoting(icmp_p, 3 if fam == "4" else 2, 43002),
                   "UDP %s:43002 -> %s:33437 with 1400 bytes of payload (DF), IP ID 0x6603 / flow 0x66003; next hop MTU 1280"
                   % (src, far))
    # Unknown next header (253, RFC 3692 experimental) to the target itself.
    c.exchange("icmp6-param-problem",
               eth_ip(ip_packet(S6, T6, 253, b"rawscan!", flow=0x66004)),
               icmp_type(58, 4), "IPv6 %s -> %s next header 253, 8 bytes b'rawscan!', flow 0x66004" % (S6, T6))

    c.finish()
    if c.missing:
        sys.exit(1)


def serve():
    """TCP 22 and UDP 7 (echo) on every address of the target, both families."""
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", TCP_OPEN))
    t.listen(16)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", UDP_ECHO))

    def accept_loop():
        while True:
            conn, _ = t.accept()
            conn.close()

    threading.Thread(target=accept_loop, daemon=True).start()
    while True:
        data, peer = u.recvfrom(65535)
        u.sendto(data, peer)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["capture"] and len(sys.argv) == 3:
        capture(sys.argv[2])
    else:
        sys.exit("usage: capture_fixtures.py serve | capture DIR")
