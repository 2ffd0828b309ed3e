#!/usr/bin/env python3
"""Generate src/services_data.rs: the port -> service-name tables and the
top-ports rankings compiled into rawscan (see src/services.rs).

Sources
-------
Service names: the IANA "Service Name and Transport Protocol Port Number
Registry". Give ONE of:

  --services FILE  a services(5)-format file. Default:
                   /usr/share/wireshark/services, Wireshark's copy of the full
                   IANA registry (Debian package libwireshark-data), which keeps
                   the first name IANA lists for each (port, protocol). Lines
                   may merge protocols ("ssh 22/tcp/udp/sctp") and give ranges
                   ("x11 6000-6063/tcp/udp"). Debian's /etc/services (netbase,
                   a small IANA subset) also parses, as a fallback.
  --iana-csv FILE  IANA's service-names-port-numbers.csv itself.

  Rule either way: for each (port, tcp|udp) keep the first non-blank service
  name in file order; rows with a blank name (Reserved, Unassigned, "any
  private ..."), a blank protocol or a non-numeric port are skipped. A port
  range gives its name to every port in it that no single-port row names.
  Aliases (later names for the same port, e.g. "www" for 80) are dropped.

Ranking: nmap's published open-port frequencies, /usr/share/nmap/nmap-services
(Debian package nmap-common; third column is the open frequency). Only port
numbers are kept: per protocol, sorted by descending frequency, ties by
ascending port, first --top (default 1000). nmap's names and comments are not
used.

Running
-------
  # once, if the Wireshark copy is not installed:
  #   apt-get download libwireshark-data && dpkg-deb -x libwireshark-data_*.deb x
  #   and pass --services x/usr/share/wireshark/services
  python3 scripts/gen-services.py                 # writes src/services_data.rs
  python3 scripts/gen-services.py --check         # exit 1 if the file is stale

Output is deterministic: it depends only on the bytes of the inputs (their
SHA-256 and base name are recorded in the header), never on time, locale or
the paths given. Python 3 standard library only.
"""

import argparse
import csv
import hashlib
import io
import os
import re
import sys

PROTOS = ("tcp", "udp")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SERVICES = "/usr/share/wireshark/services"
DEFAULT_NMAP = "/usr/share/nmap/nmap-services"
DEFAULT_OUT = os.path.join(REPO, "src", "services_data.rs")
NAME_RE = re.compile(r"^[!-~]+$")  # printable ASCII, no blanks


def die(msg):
    sys.stderr.write("gen-services: " + msg + "\n")
    sys.exit(2)


def parse_port(text):
    """'22' -> (22, 22); '6000-6063' -> (6000, 6063); otherwise None."""
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not m:
        return None
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if not (0 <= lo <= hi <= 65535):
        return None
    return lo, hi


def assign(rows):
    """rows: iterable of (name, (lo, hi), proto) in source order.
    Returns {proto: {port: name}} with single-port rows first-wins, then
    ranges filling only ports still unnamed (first range wins)."""
    table = {p: {} for p in PROTOS}
    ranges = []
    for name, (lo, hi), proto in rows:
        if proto not in table:
            continue
        if lo != hi:
            ranges.append((name, lo, hi, proto))
        elif lo != 0:  # port 0 is reserved; never name it
            table[proto].setdefault(lo, name)
    for name, lo, hi, proto in ranges:
        for port in range(max(lo, 1), hi + 1):
            table[proto].setdefault(port, name)
    return table


def rows_from_services(text):
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        name, spec = fields[0], fields[1]
        parts = spec.split("/")
        port = parse_port(parts[0])
        if port is None or len(parts) < 2:
            continue
        for proto in parts[1:]:
            yield name, port, proto.lower()


def rows_from_iana_csv(text):
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    try:
        i_name = header.index("Service Name")
        i_port = header.index("Port Number")
        i_proto = header.index("Transport Protocol")
    except ValueError:
        die("CSV header lacks Service Name / Port Number / Transport Protocol")
    for row in reader:
        if len(row) <= max(i_name, i_port, i_proto):
            continue
        # A few historic names hold blanks ("Escale (Newton Dock)").
        name = re.sub(r"\s+", "-", row[i_name].strip())
        proto = row[i_proto].strip().lower()
        port = parse_port(row[i_port])
        if not name or not proto or port is None:
            continue
        yield name, port, proto


def parse_nmap(text, top):
    freq = {p: {} for p in PROTOS}
    for raw in text.splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        fields = raw.split("\t")
        if len(fields) < 3:
            continue
        port_s, _, proto = fields[1].partition("/")
        if proto not in freq or not port_s.isdigit():
            continue
        port = int(port_s)
        f = float(fields[2])
        if port > 65535:
            die("bad port in nmap-services: " + raw)
        freq[proto][port] = max(f, freq[proto].get(port, f))
    ranked = {}
    for proto in PROTOS:
        order = sorted(freq[proto].items(), key=lambda kv: (-kv[1], kv[0]))
        if len(order) < top:
            die("nmap-services has only %d %s ports" % (len(order), proto))
        ranked[proto] = [port for port, _ in order[:top]]
    return ranked


def rust_str(s):
    if not NAME_RE.match(s) or '"' in s or "\\" in s:
        die("unexpected characters in service name %r" % s)
    return '"' + s + '"'


def render(names_desc, names_sha, nmap_desc, nmap_sha, table, ranked, top):
    out = []
    w = out.append
    w("// @generated by scripts/gen-services.py, do not edit.")
    w("//")
    w("// Service names: IANA Service Name and Transport Protocol Port Number")
    w("// Registry, %s" % names_desc)
    w("//   sha256 %s" % names_sha)
    w("// Ranking: open-port frequencies published with the Nmap Security Scanner")
    w("// (https://nmap.org/), %s" % nmap_desc)
    w("//   sha256 %s" % nmap_sha)
    w("// Only port numbers are taken from nmap, in frequency order.")
    w("//")
    w("// Invariants (checked by tests in services.rs): *_NAMES sorted by port,")
    w("// strictly ascending, no port 0; TOP_* hold %d distinct ports each." % top)
    w("")
    for proto in PROTOS:
        entries = sorted(table[proto].items())
        w("/// (port, IANA service name) for %s, strictly ascending by port." % proto.upper())
        w("pub(super) static %s_NAMES: &[(u16, &str)] = &[" % proto.upper())
        line = ""
        for port, name in entries:
            item = "(%d,%s)," % (port, rust_str(name))
            if line and len(line) + 1 + len(item) > 100:
                w(line)
                line = ""
            line = (line + " " if line else "    ") + item
        if line:
            w(line)
        w("];")
        w("")
    for proto in PROTOS:
        w("/// Top %d %s ports by nmap open frequency, most frequent first." % (top, proto.upper()))
        w("pub(super) static TOP_%s: &[u16] = &[" % proto.upper())
        ports = ranked[proto]
        for i in range(0, len(ports), 12):
            w("    " + " ".join("%d," % p for p in ports[i : i + 12]))
        w("];")
        w("")
    return "\n".join(out)


def read(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        die("cannot read %s: %s (see the header of this script)" % (path, e))
    return data.decode("utf-8", errors="replace"), hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--services", help="services(5) file (default %s)" % DEFAULT_SERVICES)
    src.add_argument("--iana-csv", help="IANA service-names-port-numbers.csv")
    ap.add_argument("--nmap", default=DEFAULT_NMAP, help="nmap-services file")
    ap.add_argument("--top", type=int, default=1000, help="ports ranked per protocol")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .rs file")
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args()

    if args.iana_csv:
        text, names_sha = read(args.iana_csv)
        table = assign(rows_from_iana_csv(text))
        names_desc = "IANA CSV %s" % os.path.basename(args.iana_csv)
    else:
        path = args.services or DEFAULT_SERVICES
        text, names_sha = read(path)
        table = assign(rows_from_services(text))
        if "Wireshark uses it" in text:
            names_desc = "Wireshark's copy of the full registry (libwireshark-data)"
        elif "netbase" in text:
            names_desc = "subset in Debian netbase /etc/services"
        else:
            names_desc = "services(5) file %s" % os.path.basename(path)
    if not table["tcp"] or not table["udp"]:
        die("no service names parsed")
    nmap_text, nmap_sha = read(args.nmap)
    ranked = parse_nmap(nmap_text, args.top)
    nmap_desc = os.path.basename(args.nmap)

    body = render(names_desc, names_sha, nmap_desc, nmap_sha, table, ranked, args.top) + "\n"
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                same = f.read() == body
        except OSError:
            same = False
        print("%s is %s" % (args.out, "up to date" if same else "STALE"))
        return 0 if same else 1
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(body)
    print(
        "wrote %s: %d tcp + %d udp names, top %d"
        % (args.out, len(table["tcp"]), len(table["udp"]), args.top)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
