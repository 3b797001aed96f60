"""Fuzz the embedded resolver's answering (barque/network/dns/answer.py, names.py): the bytes
a container sends to 127.0.0.11.

Property: `Answerer.reply` never raises; it stays silent (None) only for a packet shorter than
a header or one with QR set, and otherwise answers with a message that has QR set, the
query's id and at most the size the transport allows. The asker sits on an --internal
network, so nothing is forwarded (no traffic leaves the process).

    python fuzz/dns_query.py -runs=200000
    python fuzz/dns_query.py --iterations 200000
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402

with _driver.instrumented():
    import dns.message
    import dns.rdatatype

    from barque.network.dns.answer import Answerer
    from barque.network.dns.names import Directory

ASKER = "a" * 64
OTHER = "b" * 64
NAMES = ("web", "WEB", "db", "db.secret", "alias1", "a" * 12, "host.example", "x" * 63,
         "3.0.99.10.in-addr.arpa", "", "a.b.c.d.e", "\\000", "é")
TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX, dns.rdatatype.PTR,
         dns.rdatatype.TXT, dns.rdatatype.SRV, dns.rdatatype.ANY, 0, 65535)

_answerer: list[Answerer] = []


def _world() -> Answerer:
    if _answerer:
        return _answerer[0]
    from barque.storage import db

    root = os.path.join(_driver.sandbox(), "root")
    conn = db.connect(root)
    conn.executescript("""
        CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            driver TEXT NOT NULL, created TEXT NOT NULL, internal INTEGER NOT NULL,
            ipv6 INTEGER NOT NULL, attachable INTEGER NOT NULL, labels TEXT NOT NULL,
            options TEXT NOT NULL, ipam TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS endpoints (container_id TEXT NOT NULL,
            network_id TEXT NOT NULL, position INTEGER NOT NULL, aliases TEXT NOT NULL,
            ipam_config TEXT NOT NULL, mac_config TEXT, links TEXT NOT NULL, endpoint_id TEXT,
            ipv4 TEXT, ipv6 TEXT, mac TEXT, veth TEXT, PRIMARY KEY (container_id, network_id));
    """)
    conn.execute("INSERT INTO networks VALUES ('n1', 'secret', 'bridge', '', 1, 1, 0, '{}',"
                 " '{}', '{}', 'br-n1')")
    for cid, name, ipv4, ipv6, aliases in (
            (ASKER, "web", "10.99.0.2", None, ["alias1"]),
            (OTHER, "db", "10.99.0.3", "fd99::3", ["alias1", "x" * 63])):
        conn.execute("INSERT INTO containers VALUES (?, ?, '', 'i', 'i', ?, ?, '[]', '{}')",
                     (cid, name, json.dumps({"Hostname": "host.example"}),
                      json.dumps({"DnsOptions": ["ndots:1"]})))
        conn.execute("INSERT INTO endpoints (container_id, network_id, position, aliases,"
                     " ipam_config, links, ipv4, ipv6) VALUES (?, 'n1', 0, ?, '{}', '[]', ?, ?)",
                     (cid, json.dumps(aliases), ipv4, ipv6))
    conn.close()
    _answerer.append(Answerer(Directory(root), os.path.join(root, "no-resolv.conf")))
    return _answerer[0]


def _packet(p: _driver.Provider) -> bytes:
    if p.chance(25):
        return p.blob(600)
    name = p.pick(NAMES) if p.chance(80) else p.text(80)
    try:
        query = dns.message.make_query(name or ".", p.pick(TYPES),
                                       use_edns=0 if p.bool() else None)
    except Exception:
        query = dns.message.make_query("web", "A")
    wire = bytearray(query.to_wire())
    for _ in range(p.int(0, 4)):  # flip, cut or extend
        how = p.int(0, 2)
        if how == 0 and wire:
            wire[p.int(0, len(wire) - 1)] = p.int(0, 255)
        elif how == 1:
            del wire[p.int(0, len(wire)):]
        else:
            wire += p.blob(40)
    return bytes(wire)


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    tcp = p.bool()
    packet = _packet(p)
    out = asyncio.run(_world().reply(ASKER, packet, tcp))
    if out is None:
        assert len(packet) < 12 or packet[2] & 0x80, packet
        return
    assert len(out) <= 65535, len(out)
    qid, flags = struct.unpack("!HH", out[:4])
    assert qid == struct.unpack("!H", packet[:2])[0]
    assert flags & 0x8000
    dns.message.from_wire(out)  # what we send parses


if __name__ == "__main__":
    _driver.main("dns_query", target, max_len=1024)
