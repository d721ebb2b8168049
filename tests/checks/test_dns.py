"""`digest check --dns` against a local DNS server (dnslib on 127.0.0.1) with good and broken zones."""

from __future__ import annotations

import json

import pytest

from digest.config import load_settings
from digest.delivery.dkimkeys import RSA, DkimKey, generate_pem
from tests.helpers.dns_server import DnsServer
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import run

PEM = generate_pem(RSA)
KEY = DkimKey(RSA, "s1", PEM, "test")


@pytest.fixture
def dnsproject(project):
    (project / "dkim.pem").write_bytes(PEM)
    (project / "dkim.pem").chmod(0o600)
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[smtp]\nhost = "192.0.2.25"\n\n[dkim]\nselector = "s1"\nkey_file = "dkim.pem"\n')
    return project


def good_zone() -> dict:
    return {
        "example.org": [("TXT", "v=spf1 ip4:192.0.2.0/24 include:_spf.example.org ~all"),
                        ("TXT", "google-site-verification=x"), ("MX", "10 mx.example.org")],
        "_spf.example.org": [("TXT", "v=spf1 ip4:198.51.100.7 -all")],
        "s1._domainkey.example.org": [("TXT", KEY.record())],
        "_dmarc.example.org": [("TXT", "v=DMARC1; p=quarantine; rua=mailto:d@example.org")],
    }


def findings(project, zone, *extra) -> dict:
    from digest.checks.dns import check_dns
    from digest.checks.findings import CheckReport

    report = CheckReport(slug="x")
    with DnsServer(zone) as dns:
        check_dns(report, load_settings(project / "digest.toml"), server=dns.address, transport=None)
    return {f.code: f for f in report.findings}


def test_a_good_zone_has_no_dns_findings(dnsproject):
    assert findings(dnsproject, good_zone()) == {}


def test_the_cli_flag_reports_through_the_gate(dnsproject, capsys):
    zone = good_zone()
    del zone["_dmarc.example.org"]
    with DnsServer(zone) as dns:
        code, out, _ = run(capsys, "check", EXAMPLE_ISSUE, "--dns-server", dns.address, "--json")
    data = json.loads(out)
    codes = {f["code"]: f for f in data["findings"]}
    assert code == 1 and codes["dns-dmarc-missing"]["level"] == "error"
    assert 'TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.org"' in codes["dns-dmarc-missing"]["hint"]


@pytest.mark.parametrize("change,code,in_hint", [
    (lambda z: z.pop("example.org"), "dns-spf-missing", 'example.org. TXT "v=spf1 ip4:192.0.2.25 ~all"'),
    (lambda z: z["example.org"].append(("TXT", "v=spf1 -all")), "dns-spf-multiple", "merge"),
    (lambda z: z.__setitem__("example.org", [("TXT", "v=spf1 ipv4:192.0.2.25 ~all"), ("MX", "10 mx.example.org")]),
     "dns-spf-syntax", "v=spf1 ip4:192.0.2.25 ~all"),
    (lambda z: z.__setitem__("example.org", [("TXT", "v=spf1 ip4:203.0.113.0/24 -all"),
                                             ("MX", "10 mx.example.org")]),
     "dns-spf-not-covering", "v=spf1 ip4:203.0.113.0/24 ip4:192.0.2.25 -all"),
    (lambda z: z.pop("s1._domainkey.example.org"), "dns-dkim-missing", "s1._domainkey.example.org. IN TXT"),
    (lambda z: z.__setitem__("s1._domainkey.example.org", [("TXT", DkimKey(RSA, "s1", generate_pem(RSA), "t")
                                                            .record())]), "dns-dkim-mismatch", KEY.public_b64()[:200]),
    (lambda z: z.__setitem__("s1._domainkey.example.org", [("TXT", "v=DKIM1; p=")]), "dns-dkim-mismatch", "p="),
    (lambda z: z.__setitem__("_dmarc.example.org", [("TXT", "v=DMARC1; p=none")]), "dns-dmarc-policy-none",
     "p=quarantine"),
    (lambda z: z.__setitem__("_dmarc.example.org", [("TXT", "v=DMARC1; p=maybe")]), "dns-dmarc-invalid", "p=none"),
    (lambda z: z["example.org"].remove(("MX", "10 mx.example.org")), "dns-bounce-no-mx", "MX 10"),
])
def test_each_broken_zone_gives_its_finding_with_the_record_to_publish(dnsproject, change, code, in_hint):
    zone = good_zone()
    change(zone)
    found = findings(dnsproject, zone)
    assert code in found, found
    assert in_hint in found[code].hint


def test_spf_lookups_are_counted_through_includes(dnsproject):
    zone = good_zone()
    chain = [f"_n{i}.example.org" for i in range(11)]
    zone["example.org"][0] = ("TXT", f"v=spf1 ip4:192.0.2.25 include:{chain[0]} ~all")
    for name, nxt in zip(chain, chain[1:] + [None]):
        zone[name] = [("TXT", f"v=spf1 a include:{nxt} -all" if nxt else "v=spf1 -all")]
    found = findings(dnsproject, zone)
    assert "dns-spf-lookups" in found and "needs 21 DNS lookups" in found["dns-spf-lookups"].message


def test_dmarc_alignment_with_a_foreign_bounce_domain_and_dkim_of_another_domain(dnsproject):
    with open(dnsproject / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write('domain = "elsewhere.example"\n')
    text = (dnsproject / "digest.toml").read_text().replace(
        "[send]", '[send]\nbounce_address = "bounces@bounce.example.net"', 1)
    (dnsproject / "digest.toml").write_text(text)
    zone = good_zone()
    zone["bounce.example.net"] = [("TXT", "v=spf1 ip4:192.0.2.25 -all"), ("MX", "10 mx.example.net")]
    zone["s1._domainkey.elsewhere.example"] = [("TXT", KEY.record())]
    found = findings(dnsproject, zone)
    assert "dns-dmarc-unaligned" in found, found


def test_an_api_transport_needs_the_provider_include_and_selectors(project):
    from digest.checks.dns import check_dns
    from digest.checks.findings import CheckReport

    zone = good_zone()
    report = CheckReport(slug="x")
    with DnsServer(zone) as dns:
        check_dns(report, load_settings(project / "digest.toml"), server=dns.address, transport="sendgrid")
    codes = {f.code: f for f in report.findings}
    assert "include:sendgrid.net" in codes["dns-spf-not-covering"].hint
    assert "s2._domainkey.example.org" in codes["dns-dkim-missing"].message
    zone["s1._domainkey.example.org"] = [("CNAME", "s1.domainkey.u1.wl.sendgrid.net")]
    zone["s2._domainkey.example.org"] = [("CNAME", "s2.domainkey.u1.wl.sendgrid.net")]
    zone["example.org"][0] = ("TXT", "v=spf1 include:sendgrid.net ~all")
    report = CheckReport(slug="x")
    with DnsServer(zone) as dns:
        check_dns(report, load_settings(project / "digest.toml"), server=dns.address, transport="sendgrid")
    assert [f.code for f in report.findings] == []


def test_a_server_that_does_not_answer_is_a_lookup_failure(dnsproject):
    import socket

    from digest.checks.dns import Lookup, check_dns
    from digest.checks.findings import CheckReport

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        report = CheckReport(slug="x")
        import digest.checks.dns as dnsmod
        old = dnsmod.TIMEOUT
        dnsmod.TIMEOUT = 0.3
        try:
            check_dns(report, load_settings(dnsproject / "digest.toml"), server=f"127.0.0.1:{silent.getsockname()[1]}")
        finally:
            dnsmod.TIMEOUT = old
    assert [f.code for f in report.findings] == ["dns-lookup-failed"]
    assert Lookup("[::1]:5353").resolver.port == 5353
