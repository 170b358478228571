"""A tiny DNS client for tests (stdlib only): one question, over UDP or TCP, to one server; the answer
decoded into rcode, flags and the A/AAAA addresses. Usable as a module and as a command, so a test
can run it inside a node's namespaces:

    from nmtest import dns
    r = dns.query("10.99.0.1", "node2.office.nm.internal", "A")            # UDP
    r = dns.query("10.99.0.1", "node2.office.nm.internal", "AAAA", tcp=True)
    r["rcode"] == "NOERROR", r["addresses"] == ["10.99.0.2"], r["aa"], r["tc"]

    node.run(["/usr/bin/python3", dns.__file__, "10.99.0.1", "node2.office.nm.internal", "A", "--tcp"])
    # prints the same dict as JSON; exit status 0, or 2 when no answer came (timeout, refused)
"""

import ipaddress
import json
import random
import socket
import struct
import sys

TYPES = {"A": 1, "NS": 2, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def build(name, qtype, qid, edns=None):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p) + b"\0"
    msg = header + qname + struct.pack(">HH", TYPES.get(qtype, qtype) if isinstance(qtype, str) else qtype, 1)
    if edns:
        msg += b"\0" + struct.pack(">HHBBHH", 41, edns, 0, 0, 0, 0)
    return msg


def _skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse(msg):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    addresses, types = [], []
    for i in range(an + ns + ar):
        off = _skip_name(msg, off)
        rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        section = "answer" if i < an else "authority" if i < an + ns else "additional"
        types.append((section, rtype))
        if section == "answer" and rtype == 1:
            addresses.append(str(ipaddress.IPv4Address(rdata)))
        elif section == "answer" and rtype == 28:
            addresses.append(str(ipaddress.IPv6Address(rdata)))
    return {"id": qid, "rcode": RCODES.get(flags & 0xF, str(flags & 0xF)), "aa": bool(flags & 0x0400),
            "tc": bool(flags & 0x0200), "ra": bool(flags & 0x0080), "addresses": addresses,
            "answers": an, "authority": ns, "additional": ar, "types": types, "size": len(msg)}


def query(server, name, qtype="A", tcp=False, port=53, timeout=3.0, edns=None):
    """One query; the decoded answer, or raises OSError / socket.timeout."""
    qid = random.randrange(65536)
    msg = build(name, qtype, qid, edns)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    if tcp:
        with socket.create_connection((server, port), timeout=timeout) as s:
            s.sendall(struct.pack(">H", len(msg)) + msg)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                data += chunk
            answer = data[2:2 + struct.unpack(">H", data[:2])[0]]
    else:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.connect((server, port))
            s.send(msg)
            answer = s.recv(65536)
    r = parse(answer)
    if r["id"] != qid:
        raise ValueError(f"answer id {r['id']} != query id {qid}")
    return r


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    server, name = args[0], args[1]
    qtype = args[2] if len(args) > 2 else "A"
    try:
        r = query(server, name, qtype, tcp="--tcp" in argv, timeout=2.0)
    except (OSError, ValueError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 2
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
