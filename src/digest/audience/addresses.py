"""The one rule for when two e-mail addresses are 'the same person' (dedupe, ledger, suppression),
and the one rule for writing an internationalised domain in ASCII (keys, headers, envelopes)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=8192)
def idna_domain(domain: str) -> str | None:
    """The ASCII (punycode) form of a non-ASCII domain as email-validator sees it; None if it has none.

    UTS 46 / IDNA 2008 first (what email-validator and today's mail systems use: 'straße.de' is
    'xn--strae-oqa.de', not 'strasse.de'), IDNA 2003 for the few names only that accepts.
    """
    try:
        import idna

        return idna.encode(domain, uts46=True).decode("ascii")
    except Exception:  # idna.IDNAError, UnicodeError: try the older rules
        try:
            return domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None


def address_key(email: str) -> str:
    """Case-insensitive key for an address: local part casefolded, domain as lowercase ASCII (IDNA).

    'Ann@Example.ORG' and 'ann@example.org' share a key; so do 'x@bücher.de' and 'x@xn--bcher-kva.de'.
    """
    email = email.strip()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email.casefold()
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        # Not a valid IDN: keep it as typed; validation reports it elsewhere.
        domain = idna_domain(domain) or domain
    return f"{local.casefold()}@{domain}"
