"""The one rule for when two e-mail addresses are 'the same person' (dedupe, ledger, suppression)."""

from __future__ import annotations


def address_key(email: str) -> str:
    """Case-insensitive key for an address: local part casefolded, domain as lowercase ASCII (IDNA).

    'Ann@Example.ORG' and 'ann@example.org' share a key; so do 'x@bücher.de' and 'x@xn--bcher-kva.de'.
    """
    email = email.strip()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email.casefold()
    domain = domain.strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # not a valid IDN: keep it as typed; validation reports it elsewhere
    return f"{local.casefold()}@{domain}"
