"""Build each recipient's MIME message (multipart/alternative, text then HTML) as CRLF bytes, fast.

The per-issue parts (boundary, part headers, From/Reply-To, static extra headers, an unpersonalised
subject) are prepared once in a `MimeSkeleton`; `build()` only encodes the per-recipient bits. Bodies
are quoted-printable, encoded with C-speed `binascii.b2a_qp` segment by segment (cut at '</tr>' or
blank lines), and the encoding of every segment seen twice is reused: per recipient, only the
segments holding filled slots are encoded. `reference_mime()` is the straightforward
`EmailMessage` way, kept as the oracle for tests and the baseline for bench/.

Header lines are written by delivery/headers.py.
"""

from __future__ import annotations

import binascii
import email.utils
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Callable, Iterable

from digest.delivery.headers import (
    FIELD_NAME,
    RESERVED,
    MessageError,
    clean_message_id,
    encode_address,
    encode_unstructured,
    header_address,
    parse_mailbox,
)
from digest.outgoing import OutgoingMessage
from digest.text import header_safe

# binascii.b2a_qp encodes the last space/tab of a hard line as =20/=09 without re-checking the
# line length, so such a line can reach 77-78 characters; split it with a soft break.
_LONG_WS_LINE = re.compile(rb"^([^\n]{74,75})(=20|=09)$", re.M)

def _normalise_body(body: str) -> str:
    """LF line ends only, and a final LF (as EmailMessage.set_content does)."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    return body


def _qp_lf(text: str) -> bytes:
    """Quoted-printable of LF-terminated text, LF line ends, every line ≤ 76 characters."""
    out = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    if _blank_before_newline(text):
        out = _LONG_WS_LINE.sub(rb"\1=\n\2", out)
    return out


def _qp(body: str) -> bytes:
    """Quoted-printable UTF-8 body with CRLF line ends, every line ≤ 76 characters, ending in CRLF."""
    # With LF-only input b2a_qp writes LF for both hard and soft breaks; it never writes a bare CR
    # or LF otherwise, so turning every LF into CRLF afterwards is exact.
    return _qp_lf(_normalise_body(body)).replace(b"\n", b"\r\n")


def _qp_segment(segment: str) -> bytes:
    """QP of a body segment that the next segment continues: ends in a line break (soft if needed).

    Each segment starts at column 0, so segments encoded on their own can be concatenated.
    """
    out = _qp_lf(segment)
    if not out.endswith(b"\n"):
        # b2a_qp lets the last line of its input reach 76 characters (it looks ahead to the end of
        # the data as to a line end); that line then has no room for the soft break's '='.
        # Such a line ends in a literal character ('=XX' never reaches column 76): move it down.
        if len(out) - out.rfind(b"\n") - 1 >= 76:
            out = out[:-1] + b"=\n" + out[-1:]
        out += b"=\n"
    return out.replace(b"\n", b"\r\n")


def _blank_before_newline(body: str) -> bool:
    """Whether a line ends in a space or tab (visiting newlines: far fewer than spaces in HTML)."""
    i = body.find("\n")
    while i != -1:
        if i and body[i - 1] in " \t":
            return True
        i = body.find("\n", i + 1)
    return False


class _SegmentQP:
    """Quoted-printable encoder that remembers the encoding of body segments it has seen twice.

    Per-recipient bodies differ only in a few filled slots; cut at a frequent delimiter (the first
    of `delimiters` the body contains), every other segment is a dictionary hit, so only the
    segments around the slots are encoded per recipient. Segments are admitted on their second
    sighting so that one-off (personalised) segments never fill the cache.
    """

    __slots__ = ("delimiters", "caches", "seen", "max_entries")

    def __init__(self, delimiters: tuple[str, ...], max_entries: int = 20_000):
        self.delimiters = delimiters
        self.caches: dict[str, dict[str, bytes]] = {d: {} for d in delimiters}  # one per delimiter
        self.seen: set[int] = set()
        self.max_entries = max_entries

    def encode(self, body: str) -> bytes:
        """Same decoded content as `_qp(body)`: CRLF line ends, lines ≤ 76, ending in CRLF."""
        body = _normalise_body(body)
        for delim in self.delimiters:
            if delim in body:
                break
        else:
            return _qp(body)
        pieces = body.split(delim)
        tail = pieces.pop()  # after the last delimiter; ends with the final LF
        cache = self.caches[delim]
        get = cache.get
        out = []
        for piece in pieces:
            enc = get(piece)
            if enc is None:
                enc = self._miss(cache, piece, delim)
            out.append(enc)
        out.append(_qp_lf(tail).replace(b"\n", b"\r\n"))
        return b"".join(out)

    def _miss(self, cache: dict[str, bytes], piece: str, delim: str) -> bytes:
        enc = _qp_segment(piece + delim)
        key = hash(piece)
        if key in self.seen:
            if len(cache) < self.max_entries:
                cache[piece] = enc
        else:
            if len(self.seen) >= 4096:  # a static segment recurs in every message: a small window will do
                self.seen.clear()
            self.seen.add(key)
        return enc


class MimeSkeleton:
    """Everything about an issue's messages that does not vary per recipient, prepared once.

    `build(msg)` writes one recipient's message. From, Reply-To, Subject and each extra header are
    encoded once per distinct value (a one-entry cache per header), so a personalised subject or a
    per-recipient List-Unsubscribe costs an encoding, and static ones cost a string comparison.
    """

    def __init__(self, *, from_addr: str | None = None, reply_to: str | None = None,
                 subject: str | None = None, headers: Iterable[tuple[str, str]] = (),
                 boundary: str | None = None, clock: Callable[[], float] | None = None):
        # '=_' can never occur in quoted-printable output ('=' is always followed by hex or a line
        # break), so this boundary cannot collide with a body line.
        self.boundary = boundary or "=_digest_" + secrets.token_hex(12)
        self._clock = clock or time.time
        b = self.boundary
        self._content_type = f'Content-Type: multipart/alternative;\r\n boundary="{b}"\r\n\r\n'
        part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        self._open_text = f"--{b}\r\n{part.format('plain')}".encode("ascii")
        self._open_html = f"\r\n--{b}\r\n{part.format('html')}".encode("ascii")
        self._close = f"\r\n--{b}--\r\n".encode("ascii")
        self._cache: dict[str, tuple[str | None, str]] = {}
        # HTML from MJML is a nest of tables: '</tr>' cuts it into ~100 segments; plain text into
        # paragraphs. The caches belong to this skeleton (one issue).
        self._html_qp = _SegmentQP(("</tr>", "\n"))
        self._text_qp = _SegmentQP(("\n\n", "\n"))
        self._date_second = -1
        self._date_line = ""
        if from_addr is not None:
            self._from(from_addr)
        if reply_to is not None:
            self._reply_to(reply_to)
        if subject is not None:
            self._subject(subject)
        for hname, hvalue in headers:
            self._extra(hname, hvalue)

    @classmethod
    def for_message(cls, msg: OutgoingMessage, **kwargs) -> "MimeSkeleton":
        """A skeleton primed with the From, Reply-To, Subject and extra headers of `msg`."""
        return cls(from_addr=msg.from_addr, reply_to=msg.reply_to, subject=msg.subject,
                   headers=msg.headers, **kwargs)

    def _cached(self, key: str, value, make: Callable[[], str]) -> str:
        hit = self._cache.get(key)
        if hit is not None and hit[0] == value:
            return hit[1]
        line = make()
        self._cache[key] = (value, line)
        return line

    def _from(self, value: str) -> str:
        def make() -> str:
            name, addr = parse_mailbox(value, "From")
            return encode_address("From", name, addr)
        return self._cached("\0from", value, make)

    def _reply_to(self, value: str | None) -> str:
        if not value:
            return ""

        def make() -> str:
            name, addr = parse_mailbox(value, "Reply-To")
            return encode_address("Reply-To", name, addr)
        return self._cached("\0reply-to", value, make)

    def _subject(self, value: str) -> str:
        return self._cached("\0subject", value, lambda: encode_unstructured("Subject", value))

    def _extra(self, name: str, value: str) -> str:
        def make() -> str:
            if not FIELD_NAME.match(name) or name.lower() in RESERVED:
                raise MessageError(
                    f"extra header name {name!r} is not allowed",
                    "use printable ASCII without ':'; From/To/Subject/Date/Message-ID are set by digest")
            return encode_unstructured(name, value, encode_long=False)
        return self._cached(name, value, make)

    def _date(self) -> str:
        now = int(self._clock())
        if now != self._date_second:
            stamp = email.utils.format_datetime(datetime.fromtimestamp(now, timezone.utc))
            self._date_line = f"Date: {stamp}\r\n"
            self._date_second = now
        return self._date_line

    def build(self, msg: OutgoingMessage) -> bytes:
        """The complete RFC 5322 message for one recipient: CRLF lines, QP text and HTML parts."""
        try:
            head = [
                self._from(msg.from_addr),
                encode_address("To", msg.to_name, msg.to_email),
                self._reply_to(msg.reply_to),
                self._subject(msg.subject),
                self._date(),
                f"Message-ID: {clean_message_id(msg.message_id)}\r\n",
                "MIME-Version: 1.0\r\n",
            ]
            for hname, hvalue in msg.headers:
                head.append(self._extra(hname, hvalue))
        except MessageError as exc:
            raise MessageError(f"message for recipient {msg.recipient_id} <{msg.to_email}>: {exc.message}",
                               exc.hint) from None
        head.append(self._content_type)
        return b"".join((
            "".join(head).encode("utf-8"),
            self._open_text, self._text_qp.encode(msg.text),
            self._open_html, self._html_qp.encode(msg.html),
            self._close,
        ))


def build_mime(msg: OutgoingMessage) -> bytes:
    """Build one message without a prepared skeleton (convenience; slower for many recipients)."""
    return MimeSkeleton().build(msg)


def needs_smtputf8(mime: bytes) -> bool:
    """Whether a built message has raw UTF-8 in its headers (a non-ASCII local part): SMTPUTF8 needed."""
    return not mime.isascii()


def reference_mime(msg: OutgoingMessage, *, date: datetime | None = None) -> bytes:
    """The straightforward `EmailMessage` way to build the same message (test oracle, bench baseline).

    Not for production: besides being ~6× slower, on this Python (3.11.7) its header folding turns an
    encoded-word such as '=?utf-8?q?a=0D=0ABcc:_x@y?=' in a display name into a real header line,
    and it writes an IDN domain as an encoded-word; the address is therefore prepared as build() does.
    """
    import email.policy
    from email.headerregistry import Address
    from email.message import EmailMessage

    spec = header_address(msg.to_email)
    local, _, domain = spec.rpartition("@")
    m = EmailMessage()
    m["From"] = header_safe(msg.from_addr)
    m["To"] = Address(display_name=header_safe(msg.to_name), username=local, domain=domain)
    if msg.reply_to:
        m["Reply-To"] = header_safe(msg.reply_to)
    m["Subject"] = header_safe(msg.subject)
    m["Date"] = date or datetime.now(timezone.utc)
    m["Message-ID"] = clean_message_id(msg.message_id)
    for hname, hvalue in msg.headers:
        m[hname] = header_safe(hvalue)
    m.set_content(msg.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    m.add_alternative(msg.html, subtype="html", charset="utf-8", cte="quoted-printable")
    policy = email.policy.SMTP if local.isascii() else email.policy.SMTPUTF8
    return m.as_bytes(policy=policy)
