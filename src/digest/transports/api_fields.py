"""What each message carries, as the mail-service APIs take it: addresses (IDN domains in ASCII),
display names and header values, all through the one header sanitiser (digest.text.header_safe)."""

from __future__ import annotations

import email.utils
import re

from digest.addresses import idna_domain
from digest.outgoing import OutgoingMessage
from digest.text import header_safe

_PLAIN_PHRASE = re.compile(r"[\w !#$%&'*+\-/=?^`{|}~]+")  # atext and spaces (Unicode letters ok)


def display_address(name: str, addr: str) -> str:
    """'Name <addr>' for an API that takes RFC 5322-style strings: the name through the one header
    sanitiser, quoted unless it is plain words, and always quoted when it looks like an encoded-word
    (inside quotes RFC 2047 forbids decoding it)."""
    name = header_safe(name)
    if not name:
        return addr
    if "=?" not in name and _PLAIN_PHRASE.fullmatch(name):
        return f"{name} <{addr}>"
    return f'"{email.utils.quote(name)}" <{addr}>'


def ascii_domain(addr: str) -> str:
    """The address with its domain in ASCII (IDNA 2008 / UTS 46, addresses.idna_domain); the local
    part as it is. An address whose domain has no ASCII form is returned sanitised but unchanged."""
    addr = header_safe(addr)
    local, at, domain = addr.rpartition("@")
    if not at or domain.isascii():
        return addr
    return f"{local}@{idna_domain(domain) or domain}"


def split_address(value: str) -> tuple[str, str]:
    """(display name, bare address) of a header value such as 'News <news@example.org>', sanitised."""
    name, addr = email.utils.parseaddr(header_safe(value))
    return name, addr or header_safe(value)


def sender_address(value: str) -> str:
    """A From / Reply-To value for an API that takes RFC 5322 strings: sanitised, IDN domain in ASCII."""
    name, addr = split_address(value)
    return display_address(name, ascii_domain(addr))


def message_headers(msg: OutgoingMessage) -> list[tuple[str, str]]:
    """The message's extra headers plus Message-ID (unless already there), in a stable order, every
    value through the one header sanitiser."""
    headers = [(name, header_safe(value)) for name, value in msg.headers]
    if msg.message_id and not any(k.lower() == "message-id" for k, _ in headers):
        headers.append(("Message-ID", header_safe(msg.message_id)))
    return headers
