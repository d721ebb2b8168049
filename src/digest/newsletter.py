"""Who the newsletter is: its From address, the id its unsubscribe tokens and List-Id carry, its domain."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

from digest.errors import ConfigError
from digest.text import header_safe, slugify

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


@dataclass(frozen=True)
class Identity:
    """Everything derived from [newsletter] that every message and every token shares."""

    from_addr: str          # the From header value, e.g. 'News <news@example.org>'
    from_email: str         # its bare address
    domain: str             # the From domain: Message-IDs end in @domain
    envelope_from: str      # MAIL FROM / Return-Path: [send] bounce_address, else from_email
    reply_to: str | None
    newsletter_id: str      # [newsletter] list_id, else '<slug of the name>.<domain>': in tokens and List-Id
    list_id: str            # the List-Id header value: 'Name <newsletter_id>'


def newsletter_identity(settings: "Settings") -> Identity:
    """The newsletter's identity from its settings; ConfigError when From is not an address."""
    nl = settings.newsletter
    from_addr = header_safe(nl.from_)
    from_email = parseaddr(from_addr)[1]
    if "@" not in from_email:
        raise ConfigError(f"{settings.where('newsletter')} from = {nl.from_!r} is not an email address.",
                          'write it as "Name <address@domain>"')
    domain = from_email.rpartition("@")[2].lower()
    newsletter_id = nl.list_id or f"{slugify(nl.name, max_length=None, fallback='newsletter')}.{domain}"
    return Identity(from_addr=from_addr, from_email=from_email, domain=domain,
                    envelope_from=settings.send.bounce_address or from_email,
                    reply_to=header_safe(nl.reply_to) if nl.reply_to else None,
                    newsletter_id=newsletter_id, list_id=f"{header_safe(nl.name)} <{newsletter_id}>")
