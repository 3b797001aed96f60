"""One query in, one reply out, as Docker's embedded resolver (moby's libnetwork/resolver.go)
answers: container names from the state DB, everything else forwarded to the asker's
`--dns` servers or the host's. The bytes come from a container: anything may arrive."""

from __future__ import annotations

import random
import sqlite3
import struct

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename

from barque.network import resolvconf
from barque.network.dns.names import Asker, Directory

TTL = 600                 # Docker's respTTL
MAX_SERVERS = 3           # Docker's maxExtDNS
FORWARD_TIMEOUT = 4.0     # Docker's extIOTimeout, per server
MAX_FORWARDS = 1024       # Docker's maxConcurrent: more in flight get REFUSED
OWN_ADDRESS = "127.0.0.11"

_QR = 0x8000
_RD_CD = 0x0110


class Answerer:
    def __init__(self, directory: Directory, host_resolv_conf: str | None = None) -> None:
        self.directory = directory
        self.host_resolv_conf = host_resolv_conf or resolvconf.host_path()
        self.forwards = 0

    async def reply(self, container_id: str, data: bytes, tcp: bool) -> bytes | None:
        """The reply to send back, or None to stay silent (as miekg/dns for a reply or a
        header too short to answer: any reply to junk could be used to amplify)."""
        if len(data) < 12:
            return None
        _, flags, qdcount, ancount, nscount, arcount = struct.unpack("!6H", data[:12])
        if flags & _QR:
            return None
        opcode = (flags >> 11) & 0xF
        if opcode != 0:
            return _header_reply(data, dns.rcode.NOTIMP, opcode)
        if qdcount != 1 or ancount > 1 or nscount > 1 or arcount > 2:
            return _header_reply(data, dns.rcode.FORMERR, 0)
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return _header_reply(data, dns.rcode.FORMERR, 0)
        if len(query.question) != 1:
            return _header_reply(data, dns.rcode.FORMERR, 0)
        try:
            response = await self._answer(container_id, query, tcp)
            return _to_wire(response, query, tcp)
        except Exception:  # a state we did not foresee (a bad row?): the asker still hears
            return _to_wire(_rcode(query, dns.rcode.SERVFAIL), query, tcp)

    async def _answer(self, container_id: str, query: dns.message.Message,
                      tcp: bool) -> dns.message.Message:
        question = query.question[0]
        qtype = question.rdtype
        name = "" if question.name == dns.name.root else \
            question.name.to_text(omit_final_dot=True)
        try:
            asker = self.directory.asker(container_id)
            local = self._local(asker, query, name, qtype)
        except sqlite3.Error:
            return _rcode(query, dns.rcode.SERVFAIL)
        if local is not None:
            return local
        if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and "." not in name \
                and self._ndots_set(asker):
            # The user set ndots: an unknown single label gets an empty answer so that the
            # client goes on with its search domains (Docker's rule).
            return _response(query)
        forwarded = await self._forward(asker, query, tcp)
        return forwarded if forwarded is not None else _rcode(query, dns.rcode.SERVFAIL)

    def _local(self, asker: Asker, query: dns.message.Message, name: str,
               qtype: dns.rdatatype.RdataType) -> dns.message.Message | None:
        if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses = self.directory.lookup(asker, name, qtype == dns.rdatatype.AAAA)
            if addresses is None:
                return None
            random.shuffle(addresses)
            response = _response(query)
            if addresses:
                rrset = response.find_rrset(response.answer, query.question[0].name,
                                            dns.rdataclass.IN, qtype, create=True)
                for address in addresses:
                    rrset.add(dns.rdata.from_text(dns.rdataclass.IN, qtype, address), TTL)
            return response
        if qtype == dns.rdatatype.MX:
            # A container name has no MX: an empty NOERROR tells mail clients to use its A.
            if self.directory.lookup(asker, name, False) is None and \
                    self.directory.lookup(asker, name, True) is None:
                return None
            return _response(query)
        if qtype == dns.rdatatype.PTR:
            return self._ptr(asker, query)
        return None

    def _ptr(self, asker: Asker, query: dns.message.Message) -> dns.message.Message | None:
        qname = query.question[0].name
        try:
            address = dns.reversename.to_address(qname)
        except Exception:
            return None  # not an in-addr.arpa / ip6.arpa name: maybe upstream knows it
        host = self.directory.reverse(asker, address)
        if host is None:
            return None
        response = _response(query)
        rrset = response.find_rrset(response.answer, qname, dns.rdataclass.IN,
                                    dns.rdatatype.PTR, create=True)
        rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, host + "."), TTL)
        return response

    def _host_text(self) -> str:
        try:
            with open(self.host_resolv_conf, encoding="utf-8", errors="replace") as f:
                return f.read(1 << 20)
        except OSError:
            return ""

    def _ndots_set(self, asker: Asker) -> bool:
        try:
            return resolvconf.ndots_set(self._host_text(), asker.dns_options)
        except resolvconf.ResolvConfError:
            return False

    def servers(self, asker: Asker) -> list[str]:
        """Where the asker's other names go: its `--dns` (never our own address), else the
        host's resolv.conf servers, reached from the host's netns (Docker's "host(...)")."""
        if asker.dns:
            chosen = [s for s in asker.dns if s != OWN_ADDRESS]
        else:
            try:
                chosen = resolvconf.nameservers(self._host_text())
            except resolvconf.ResolvConfError:
                chosen = []
        return chosen[:MAX_SERVERS]

    async def _forward(self, asker: Asker, query: dns.message.Message,
                       tcp: bool) -> dns.message.Message | None:
        if not asker.external:
            return None  # only --internal networks: no way out, as Docker
        for server in self.servers(asker):
            if self.forwards >= MAX_FORWARDS:
                return _rcode(query, dns.rcode.REFUSED)
            self.forwards += 1
            try:
                if tcp:
                    response = await dns.asyncquery.tcp(query, server, timeout=FORWARD_TIMEOUT)
                else:
                    response, _ = await dns.asyncquery.udp_with_fallback(
                        query, server, timeout=FORWARD_TIMEOUT, ignore_unexpected=True)
            except Exception:
                continue  # unreachable, timed out, or a reply we cannot read: the next one
            finally:
                self.forwards -= 1
            if response.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                continue
            return response
        return None


def _response(query: dns.message.Message) -> dns.message.Message:
    """Docker's createRespMsg: a reply with recursion available, no records yet."""
    return dns.message.make_response(query, recursion_available=True)


def _rcode(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response


def _to_wire(response: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
    """The reply, truncated (TC set, records dropped) when it exceeds what the client takes:
    512 bytes over UDP unless its EDNS payload says more (up to what a datagram holds),
    64 KiB over TCP."""
    limit = 65535 if tcp else min(max(512, query.payload if query.edns >= 0 else 512), 65507)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.flags |= dns.flags.TC
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        return response.to_wire(max_size=limit)


def _header_reply(data: bytes, rcode: dns.rcode.Rcode, opcode: int) -> bytes:
    """A bare header (miekg/dns's reply to a query it rejects): its id, QR, the opcode given,
    its RD and CD bits, the rcode; no sections."""
    qid, flags = struct.unpack("!HH", data[:4])
    return struct.pack("!6H", qid, _QR | (opcode << 11) | (flags & _RD_CD) | rcode, 0, 0, 0, 0)
