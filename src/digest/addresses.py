"""The rules for addresses: when one is valid (and its normalised form), when two are 'the same
person' (dedupe, ledger, suppression), and how an internationalised domain is written in ASCII
(keys, headers, envelopes)."""

from __future__ import annotations

import functools
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email


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
    """Case-insensitive key for an address: local part NFC and lower-cased, domain as lowercase ASCII (IDNA).

    'Ann@Example.ORG' and 'ann@example.org' share a key; so do 'x@bücher.de' and 'x@xn--bcher-kva.de',
    and 'zoë' composed or not. Lower-casing (not casefolding) keeps distinct mailboxes apart:
    casefold() makes 'straße' 'strasse' and 'ﬀ' 'ff', which are other people's addresses.
    """
    return _key(email, lambda local: unicodedata.normalize("NFC", local).lower())


def casefold_address_key(email: str) -> str:
    """The key before it kept 'straße@' and 'strasse@' apart: only to verify tokens signed with it."""
    return _key(email, str.casefold)


def _key(email: str, fold) -> str:
    email = email.strip()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return fold(email)
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        # Not a valid IDN: keep it as typed; validation reports it elsewhere.
        domain = idna_domain(domain) or domain
    return f"{fold(local)}@{domain}"


_ATEXT = r"A-Za-z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([^@\s]+)\Z")
# RFC 2142 names email-validator lower-cases (its CASE_INSENSITIVE_MAILBOX_NAMES): left to it.
_ROLE_MAILBOXES = frozenset({"info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
                             "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp"})


def normalise_address(text: str) -> str:
    """email-validator's normalised form of `text` (no DNS); raises EmailNotValidError when invalid.

    Same answer as validate_email(text, check_deliverability=False).normalized. Most of its cost is
    checking the domain (~60% of ~70 µs), and a list has few distinct domains: so for a plain ASCII
    local part the domain's verdict is remembered, and everything else (Unicode or quoted local parts,
    role names, any domain not yet known valid, every error) goes through validate_email itself.
    """
    m = _PLAIN_ADDRESS.match(text)
    if m and m.group(1).lower() not in _ROLE_MAILBOXES and (domain := _valid_domain(m.group(2))):
        unicode_domain, ascii_domain = domain
        local = m.group(1)
        normalised = f"{local}@{unicode_domain}"
        # validate_email_length: original, normalised and ASCII forms, each at most 254 octets
        if max(len(text.encode()), len(normalised.encode()), len(local) + 1 + len(ascii_domain)) <= 254:
            return normalised
    return validate_email(text, check_deliverability=False).normalized


@functools.lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> tuple[str, str] | None:
    """(normalised, ASCII) forms of a domain email-validator accepts; None when it does not."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def check_address(text: str, hint: str, *, where: str = "") -> str:
    """The normalised address, or a SubscriberError "<where>'text' is not an email address (why)"."""
    from digest.errors import SubscriberError

    try:
        return normalise_address(text.strip())
    except EmailNotValidError as exc:
        raise SubscriberError(f"{where}{text!r} is not an email address ({exc}).", hint) from None
