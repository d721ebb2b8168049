"""`digest check --dns`: is the DNS ready for authenticated mail? SPF, DKIM, DMARC and the bounce MX.

Each finding names the record read (in the message) and the exact record to publish (in the hint).
Lookups go to the system resolver, or to `--dns-server HOST:PORT` (tests, split-horizon DNS).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.checks.findings import CheckReport

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

TIMEOUT = 5.0
SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4
_SPF_TERM = re.compile(r"^[+?~-]?(all|include:\S+|a(:\S+)?(/\d+)?|mx(:\S+)?(/\d+)?|ptr(:\S+)?|exists:\S+|"
                       r"ip4:[0-9./]+|ip6:[0-9a-fA-F:./]+)$|^(redirect|exp)=\S+$|^[a-zA-Z][\w.-]*=\S*$", re.I)


@dataclass(frozen=True)
class Provider:
    """What an API provider's setup guides tell a domain to publish (see docs/transports/)."""

    spf_include: str | None     # the include its servers' SPF is reached by (None: through a return-path CNAME)
    selectors: tuple[str, ...]  # DKIM selectors its domain setup always uses (none: account-specific)
    spf_subdomain: str = ""     # where its SPF record goes, under the From domain ('' = the domain itself)


PROVIDERS = {
    "postmark": Provider(None, ()),                   # selector date-based per account; SPF via pm-bounces CNAME
    "sendgrid": Provider("sendgrid.net", ("s1", "s2")),
    "mailgun": Provider("mailgun.org", ()),           # selector per domain
    "resend": Provider("amazonses.com", ("resend",), "send"),
}


class Lookup:
    """dnspython queries with one timeout; answers as text, None for no record, raising on failures."""

    def __init__(self, server: str | None = None, timeout: float = TIMEOUT):
        import dns.resolver

        if server:
            host, port = server, "53"
            if server.startswith("["):  # [::1]:5353
                host, _, rest = server[1:].partition("]")
                port = rest.lstrip(":") or "53"
            elif server.count(":") == 1:
                host, port = server.split(":")
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = int(port)
        else:
            self.resolver = dns.resolver.Resolver()
        self.timeout = timeout
        self.queries = 0

    def records(self, name: str, rtype: str) -> list[str]:
        """Every record of `rtype` at `name` as text (TXT strings joined); [] when there is none."""
        import dns.exception
        import dns.resolver

        self.queries += 1
        try:
            answer = self.resolver.resolve(name, rtype, lifetime=self.timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise LookupError(f"{name} {rtype}: {type(exc).__name__}: {exc}") from None
        if rtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return [r.to_text() for r in answer]


def _spf_records(lookup: Lookup, domain: str) -> list[str]:
    return [t for t in lookup.records(domain, "TXT") if t.lower().split(" ", 1)[0] == "v=spf1"]


def _spf_walk(lookup: Lookup, domain: str, ips: list, depth: int = 0) -> tuple[int, bool]:
    """(DNS lookups the record costs, counted through includes; whether `ips` all pass before 'all')."""
    records = _spf_records(lookup, domain)
    if not records or depth > 10:
        return 0, False
    count, covered = 0, [False] * len(ips)
    for term in records[0].split()[1:]:
        qualifier, mech = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
        name, _, arg = mech.partition(":")
        name = name.split("/")[0].lower()
        if name.startswith("redirect="):
            sub_count, sub_cov = _spf_walk(lookup, mech.split("=", 1)[1], ips, depth + 1)
            return count + 1 + sub_count, sub_cov or all(covered)
        if name in ("include", "a", "mx", "ptr", "exists"):
            count += 1
        if name == "include":
            sub_count, sub_cov = _spf_walk(lookup, arg, ips, depth + 1)
            count += sub_count
            if sub_cov and qualifier == "+":
                covered = [True] * len(ips)
        elif name in ("ip4", "ip6", "a") and qualifier == "+":
            nets = _networks(lookup, name, arg or domain)
            covered = [c or any(ip in n for n in nets) for c, ip in zip(covered, ips)]
    return count, bool(ips) and all(covered)


def _networks(lookup: Lookup, mech: str, arg: str) -> list:
    if mech in ("ip4", "ip6"):
        try:
            return [ipaddress.ip_network(arg, strict=False)]
        except ValueError:
            return []
    return [ipaddress.ip_network(a) for t in ("A", "AAAA") for a in lookup.records(arg.split("/")[0], t)]


def check_spf(report: CheckReport, lookup: Lookup, domain: str, relay_ips: list, include: str | None) -> None:
    """SPF of one domain: present, one record, valid terms, ≤ 10 lookups, covering the relay or provider."""
    where = f"{domain} TXT"
    records = _spf_records(lookup, domain)
    want = f"v=spf1 {f'include:{include}' if include else ' '.join(_ip_terms(relay_ips)) or 'mx'} ~all"
    if not records:
        report.add("dns-spf-missing", f"{domain} has no SPF record.", where, f'publish: {domain}. TXT "{want}"')
        return
    if len(records) > 1:
        report.add("dns-spf-multiple", f"{domain} has {len(records)} SPF records (receivers then fail SPF): "
                   + " | ".join(records), where, "merge them into one TXT record starting v=spf1")
        return
    record = records[0]
    bad = [t for t in record.split()[1:] if not _SPF_TERM.match(t)]
    if bad:
        report.add("dns-spf-syntax", f"{domain} SPF record {record!r} has terms receivers reject: {', '.join(bad)}.",
                   where, f'publish: {domain}. TXT "{want}"')
        return
    count, covered = _spf_walk(lookup, domain, relay_ips)
    if count > SPF_LOOKUP_LIMIT:
        report.add("dns-spf-lookups", f"{domain} SPF record {record!r} needs {count} DNS lookups (includes "
                   f"counted through); receivers stop at {SPF_LOOKUP_LIMIT}.", where,
                   "replace includes you no longer use, or list ip4:/ip6: ranges instead")
    if include and f"include:{include}" not in record.lower():
        report.add("dns-spf-not-covering", f"{domain} SPF record {record!r} does not include {include}.", where,
                   f'publish: {domain}. TXT "{_with_term(record, f"include:{include}")}"')
    elif not include and relay_ips and not covered:
        terms = " ".join(_ip_terms(relay_ips))
        report.add("dns-spf-not-covering", f"{domain} SPF record {record!r} does not authorise the SMTP relay "
                   f"({', '.join(map(str, relay_ips))}).", where, f'publish: {domain}. TXT "{_with_term(record, terms)}"')


def _ip_terms(ips: list) -> list[str]:
    return [f"ip{ip.version}:{ip}" for ip in ips]


def _with_term(record: str, term: str) -> str:
    """`record` with `term` added before its 'all' (or at the end)."""
    parts = record.split()
    tail = [p for p in parts[1:] if p.lstrip("+-~?").lower() == "all"]
    head = [p for p in parts[1:] if p not in tail]
    return " ".join(["v=spf1", *head, term, *(tail or ["~all"])])


def check_dkim_key(report: CheckReport, lookup: Lookup, key, domain: str) -> None:
    """The selector's record exists and publishes the public half of the configured private key."""
    from digest.delivery.dkimkeys import parse_tags, zone_line

    name = f"{key.selector}._domainkey.{domain}"
    records = [r for r in lookup.records(name, "TXT") if "p=" in r]
    publish = f"publish: {zone_line(key.selector, domain, key.record())}"
    if not records:
        report.add("dns-dkim-missing", f"no DKIM record at {name}: receivers cannot check digest's signatures.",
                   f"{name} TXT", publish)
        return
    tags = parse_tags(records[0])
    if tags.get("p") != key.public_b64():
        read = records[0] if len(records[0]) < 120 else records[0][:117] + "…"
        report.add("dns-dkim-mismatch", f"the DKIM record at {name} ({read!r}) is not the public half of the "
                   f"configured {key.algorithm} key (a revoked, old or other key): signatures will fail.",
                   f"{name} TXT", publish)


def _aligned(a: str, b: str, strict: bool) -> bool:
    """DMARC identifier alignment (relaxed: one a subdomain of the other, as a simplification of
    'the same organisational domain', which needs the public-suffix list)."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b or (not strict and (a.endswith("." + b) or b.endswith("." + a)))


def check_dmarc(report: CheckReport, lookup: Lookup, from_domain: str, spf_domain: str | None,
                dkim_domain: str | None) -> None:
    """A DMARC record at _dmarc.<From domain>, its policy, and whether SPF or DKIM aligns with From."""
    from digest.delivery.dkimkeys import parse_tags

    name = f"_dmarc.{from_domain}"
    records = [r for r in lookup.records(name, "TXT") if r.replace(" ", "").lower().startswith("v=dmarc1")]
    suggestion = f'publish: {name}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{from_domain}"'
    if not records:
        report.add("dns-dmarc-missing", f"{from_domain} has no DMARC record: Gmail and Yahoo require one for bulk "
                   "mail.", f"{name} TXT", suggestion)
        return
    tags = {k: v.lower() for k, v in parse_tags(records[0]).items()}
    if tags.get("p") not in ("none", "quarantine", "reject"):
        report.add("dns-dmarc-invalid", f"the DMARC record {records[0]!r} has no valid p= policy.", f"{name} TXT",
                   suggestion)
        return
    if tags["p"] == "none":
        report.add("dns-dmarc-policy-none", f"DMARC policy is p=none ({records[0]!r}): reports only, nothing "
                   "enforced (enough for Gmail and Yahoo's bulk rules).", f"{name} TXT",
                   "once the reports show only your own mail, move to p=quarantine, then p=reject")
    spf_ok = bool(spf_domain) and _aligned(spf_domain, from_domain, tags.get("aspf") == "s")
    dkim_ok = bool(dkim_domain) and _aligned(dkim_domain, from_domain, tags.get("adkim") == "s")
    if not (spf_ok or dkim_ok):
        report.add("dns-dmarc-unaligned", f"neither SPF ({spf_domain or 'not digest’s to set'}) nor DKIM "
                   f"({dkim_domain or 'not signed by digest'}) aligns with the From domain {from_domain}: DMARC "
                   "fails.", f"{name} TXT", f"sign with [dkim] domain = \"{from_domain}\" (digest dkim keygen), or "
                   f"set [send] bounce_address to an address at {from_domain}")


def check_bounce_mx(report: CheckReport, lookup: Lookup, domain: str) -> None:
    """Bounces come back to the envelope domain's MX (or, without one, its A record)."""
    if lookup.records(domain, "MX"):
        return
    has_a = bool(lookup.records(domain, "A") or lookup.records(domain, "AAAA"))
    report.add("dns-bounce-no-mx", f"the bounce domain {domain} has no MX record"
               + (" (mail falls back to its A record)" if has_a else ", nor an address: bounces are lost") + ".",
               f"{domain} MX", f"publish: {domain}. MX 10 <your mail server>. (or set [send] bounce_address)")


def check_dns(report: CheckReport, settings: "Settings", *, server: str | None = None,
              transport: str | None = None) -> None:
    """`digest check --dns`: SPF, DKIM, DMARC and MX for the From and the envelope domains."""
    lookup = Lookup(server)
    try:
        _check_all(report, settings, lookup, transport or settings.send.transport)
    except LookupError as exc:
        report.add("dns-lookup-failed", f"a DNS lookup failed: {exc}.", "",
                   "check the resolver (or --dns-server) and try again")


def _check_all(report: CheckReport, settings: "Settings", lookup: Lookup, transport: str) -> None:
    from digest.addresses import idna_domain
    from digest.delivery.dkim import signing_domain
    from digest.delivery.dkimkeys import keys_for_settings
    from digest.newsletter import newsletter_identity

    identity = newsletter_identity(settings)
    from_domain = idna_domain(identity.domain) or identity.domain
    bounce = identity.envelope_from.rpartition("@")[2]
    bounce_domain = idna_domain(bounce) or bounce
    provider = PROVIDERS.get(transport)
    relay_ips = _relay_addresses(settings, lookup) if provider is None else []
    spf_domains = [bounce_domain, from_domain]
    if provider and provider.spf_subdomain:
        spf_domains = [f"{provider.spf_subdomain}.{from_domain}"]
    for domain in dict.fromkeys(spf_domains):
        check_spf(report, lookup, domain, relay_ips, provider.spf_include if provider else None)
    dkim_domain = None
    if provider is None:
        keys = keys_for_settings(settings)
        if keys:
            dkim_domain = signing_domain(settings)
            for key in keys:
                check_dkim_key(report, lookup, key, dkim_domain)
        else:
            report.add("dns-dkim-unsigned", "digest does not DKIM-sign ([dkim] selector is not set): the relay's "
                       "own signature (if any) cannot be checked from here.", "",
                       "digest dkim keygen --selector NAME --out dkim.pem, then set [dkim] (the going-live guide)")
    else:
        dkim_domain = from_domain
        for selector in provider.selectors:
            name = f"{selector}._domainkey.{from_domain}"
            if not lookup.records(name, "TXT") and not lookup.records(name, "CNAME"):
                report.add("dns-dkim-missing", f"no DKIM record at {name}, which {transport}'s domain setup "
                           "publishes.", f"{name} TXT", f"publish the record {transport}'s domain settings show for "
                           f"{name}")
    check_dmarc(report, lookup, from_domain, bounce_domain if provider is None else None, dkim_domain)
    check_bounce_mx(report, lookup, bounce_domain)


def _relay_addresses(settings: "Settings", lookup: Lookup) -> list:
    """The [smtp] host's addresses: an IP as it is, a name through the same resolver."""
    host = str(settings.transport_section("smtp").get("host", "") or "")
    if not host:
        return []
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return [ipaddress.ip_address(a) for t in ("A", "AAAA") for a in lookup.records(host, t)]
