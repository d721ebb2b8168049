"""A small authoritative DNS server on 127.0.0.1 for tests (dnslib), serving a zone the test writes.

    with DnsServer({"example.org": [("TXT", "v=spf1 -all"), ("MX", "10 mx.example.org")]}) as dns:
        dns.address   # "127.0.0.1:PORT" — what `digest check --dns-server` takes
        dns.zone["s1._domainkey.example.org"] = [("TXT", "v=DKIM1; k=rsa; p=…")]   # changes apply at once

Record types: TXT (long text is cut into 255-byte strings, as DNS stores it), MX ("pref host"),
A, AAAA, CNAME. A name that is absent answers NXDOMAIN; a name with records of other types NOERROR
with no answer. Also `txt_lookup(dns)`: a dkimpy `dnsfunc` that asks this server with dnspython.
"""

from __future__ import annotations

from typing import Iterable

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

Zone = dict[str, list[tuple[str, str]]]


def _rdata(rtype: str, value: str):
    if rtype == "TXT":
        raw = value.encode("utf-8")
        return TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
    if rtype == "MX":
        pref, host = value.split()
        return MX(host, int(pref))
    return {"A": A, "AAAA": AAAA, "CNAME": CNAME}[rtype](value)


class _Resolver(BaseResolver):
    def __init__(self, zone: Zone):
        self.zone = zone

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        records = {k.rstrip(".").lower(): v for k, v in self.zone.items()}.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in records:
            if rtype == qtype or (rtype == "CNAME" and qtype != "CNAME"):
                reply.add_answer(RR(DNSLabel(qname), getattr(QTYPE, rtype), rdata=_rdata(rtype, value), ttl=60))
        return reply


class DnsServer:
    """A UDP DNS server on 127.0.0.1 (a free port) answering from `zone` until stopped."""

    def __init__(self, zone: Zone | None = None):
        self.zone: Zone = dict(zone or {})
        self._server = DNSServer(_Resolver(self.zone), port=0, address="127.0.0.1",
                                 logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=lambda *a: None))

    @property
    def port(self) -> int:
        return self._server.server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, records: Iterable[tuple[str, str]]) -> None:
        self.zone[name] = list(records)

    def __enter__(self) -> "DnsServer":
        self._server.start_thread()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
        self._server.server.server_close()


def txt_lookup(server: DnsServer):
    """A dkimpy `dnsfunc`: the TXT record at `name`, asked of the test server over UDP with dnspython."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
        except dns.exception.DNSException:
            return None
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup
