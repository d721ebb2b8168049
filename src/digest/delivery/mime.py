"""Build each recipient's MIME message (multipart/alternative, text then HTML) as CRLF bytes, fast.

The per-issue parts (boundary, part headers, From/Reply-To, static extra headers, an unpersonalised
subject) are prepared once in a `MimeSkeleton`; `build()` only encodes the per-recipient bits. Bodies
are quoted-printable, encoded with C-speed `binascii.b2a_qp` segment by segment (cut at '</tr>' or
blank lines), and the encoding of every segment seen twice is reused: per recipient, only the
segments holding filled slots are encoded. `reference_mime()` is the straightforward
`EmailMessage` way, kept as the oracle for tests and the baseline for bench/.

Header safety: CR, LF and NUL are removed from every header value, and any word that looks like an
RFC 2047 encoded-word (`=?…?=`) is itself encoded, so a decoder shows it as the literal text it was.
"""

from __future__ import annotations

import binascii
import email.utils
import functools
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Callable, Iterable

from digest.audience.addresses import idna_domain
from digest.errors import DigestError
from digest.transports.base import OutgoingMessage

MAX_LINE = 78        # RFC 5322 SHOULD (header lines, excluding CRLF)
HARD_LINE = 998      # RFC 5322 MUST
EW_MAX = 75          # RFC 2047: an encoded-word is at most 75 characters
_EW_OVERHEAD = len("=?utf-8?q??=")

# Headers build() writes itself; an extra header with one of these names would duplicate them.
RESERVED = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "sender", "return-path",
})

_UNSAFE_HEADER_CHARS = re.compile(r"[\r\n\0]")
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")            # printable ASCII except ':'
_WORDS = re.compile(r"[ \t]+|[^ \t]+")              # only SP/HTAB are folding whitespace
# A word goes out as-is only when it is printable ASCII and cannot be mistaken for an encoded-word.
_NEEDS_EW = re.compile(r"[^!-~]|=\?")
# In a display name a word may stay as-is only when it is an atom (RFC 5322 atext).
_NEEDS_EW_PHRASE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|=\?")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_QUOTABLE = re.compile(r"[ !-~]+\Z")
_PLAIN = re.compile(r"[ !-~]*\Z")                   # printable ASCII and spaces
_BAD_ADDR_CHARS = re.compile(r"[\s<>(),;:\"\[\]\\]")
# binascii.b2a_qp encodes the last space/tab of a hard line as =20/=09 without re-checking the
# line length, so such a line can reach 77-78 characters; split it with a soft break.
_LONG_WS_LINE = re.compile(rb"^([^\n]{74,75})(=20|=09)$", re.M)

# Q encoding: bytes that may stay literal inside an encoded-word even in a phrase (RFC 2047 5(3)).
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_QBYTE = ["_" if b == 0x20 else chr(b) if b in _Q_LITERAL else f"={b:02X}" for b in range(256)]


class MessageError(DigestError):
    """A message cannot be built: a bad address, header name or an unfoldable header value."""


def clean_header_value(value: str) -> str:
    """Remove CR, LF and NUL (header injection) and surrounding blanks from a header value."""
    if "\r" in value or "\n" in value or "\0" in value:
        value = _UNSAFE_HEADER_CHARS.sub("", value)
    return value.strip(" \t")


@functools.lru_cache(maxsize=4096)
def _q_char(ch: str) -> str:
    return "".join([_QBYTE[b] for b in ch.encode("utf-8")])


def _encoded_words(text: str, first_room: int) -> list[str]:
    """Split `text` into RFC 2047 encoded-words (whole characters each), the first ≤ first_room long."""
    q_len = sum(len(_q_char(c)) for c in text)
    raw = text.encode("utf-8")
    b_len = (len(raw) + 2) // 3 * 4
    words: list[str] = []
    room = first_room - _EW_OVERHEAD
    if q_len <= b_len:  # mostly ASCII: Q stays readable
        cur: list[str] = []
        used = 0
        for ch in text:
            enc = _q_char(ch)
            if cur and used + len(enc) > room:
                words.append("=?utf-8?q?" + "".join(cur) + "?=")
                cur, used, room = [], 0, EW_MAX - _EW_OVERHEAD
            cur.append(enc)
            used += len(enc)
        words.append("=?utf-8?q?" + "".join(cur) + "?=")
        return words
    start = 0
    nbytes = 0
    pos = 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if pos > start and (nbytes + n + 2) // 3 * 4 > room:
            chunk = text[start:pos].encode("utf-8")
            words.append("=?utf-8?b?" + binascii.b2a_base64(chunk, newline=False).decode("ascii") + "?=")
            start, nbytes, room = pos, 0, EW_MAX - _EW_OVERHEAD
        nbytes += n
        pos += 1
    chunk = text[start:].encode("utf-8")
    words.append("=?utf-8?b?" + binascii.b2a_base64(chunk, newline=False).decode("ascii") + "?=")
    return words


class _Folder:
    """Accumulates one header field, folding at whitespace to keep lines within 78 characters."""

    __slots__ = ("name", "lines", "cur", "start")

    def __init__(self, name: str):
        self.name = name
        self.lines: list[str] = []
        self.cur = name + ":"
        self.start = len(self.cur)

    def add(self, sep: str, atom: str) -> None:
        """Append `atom` after whitespace `sep`, starting a continuation line when it would not fit."""
        if len(self.cur) + len(sep) + len(atom) > MAX_LINE and len(self.cur) > self.start and sep:
            self.lines.append(self.cur)
            self.cur = sep + atom
        else:
            self.cur += sep + atom
        if len(self.cur) > HARD_LINE // 4 and len(self.cur.encode("utf-8")) > HARD_LINE:
            raise MessageError(
                f"header {self.name}: a word of {len(atom)} characters cannot be folded within the "
                f"{HARD_LINE}-character line limit",
                "shorten the value (or put the long link in the body)")

    def add_encoded(self, sep: str, text: str) -> None:
        """Append `text` as encoded-words, using the room left on the current line when sensible."""
        room = MAX_LINE - len(self.cur) - len(sep)
        first = min(room, EW_MAX) if room >= 24 else EW_MAX
        for i, word in enumerate(_encoded_words(text, first)):
            self.add(sep if i == 0 else " ", word)

    def text(self) -> str:
        """The folded field with its CRLF."""
        self.lines.append(self.cur)
        return "\r\n".join(self.lines) + "\r\n"


def _unstructured(fold: _Folder, value: str, *, encode_long: bool, needs_ew: re.Pattern = _NEEDS_EW) -> None:
    """Add free text: ASCII words as they are, runs of other words as encoded-words."""
    tokens = _WORDS.findall(value)
    i, n = 0, len(tokens)
    sep = " "
    while i < n:
        tok = tokens[i]
        if tok[0] in " \t":
            sep = tok
            i += 1
            continue
        if needs_ew.search(tok) or (encode_long and len(tok) > MAX_LINE - 2):
            # Merge neighbouring words that need encoding (with the blanks between them) into one
            # run: blanks between two encoded-words are dropped by decoders.
            j = i + 1
            while j + 1 < n and (needs_ew.search(tokens[j + 1])
                                 or (encode_long and len(tokens[j + 1]) > MAX_LINE - 2)):
                j += 2
            fold.add_encoded(sep, "".join(tokens[i:j]))
            i = j
        else:
            fold.add(sep, tok)
            i += 1
        sep = ""


def encode_unstructured(name: str, value: str, *, encode_long: bool = True) -> str:
    """One folded header field (with CRLF) for a free-text value such as Subject or List-Id."""
    value = clean_header_value(value)
    if len(name) + 2 + len(value) <= MAX_LINE and _PLAIN.match(value) and "=?" not in value:
        return f"{name}: {value}\r\n"  # the common case: short printable ASCII
    fold = _Folder(name)
    if value:
        _unstructured(fold, value, encode_long=encode_long)
    else:
        fold.cur += " "
    return fold.text()


def _ascii_domain(domain: str) -> str:
    """The IDNA (punycode) form of a domain (addresses.idna_domain); MessageError when it has none."""
    ascii_form = idna_domain(domain)
    if ascii_form is None:
        raise MessageError(f"address domain {domain!r} is not a valid internationalised domain name",
                           "fix or remove the address in the subscriber list")
    return ascii_form


def header_address(addr: str) -> str:
    """The addr-spec as it goes in a header: IDN domain as punycode unless the local part needs UTF-8."""
    addr = clean_header_value(addr)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or _BAD_ADDR_CHARS.search(addr):
        raise MessageError(f"{addr!r} is not a usable e-mail address",
                           "fix or remove the address in the subscriber list")
    if domain.isascii():
        return addr
    if local.isascii():
        return f"{local}@{_ascii_domain(domain)}"
    return addr  # SMTPUTF8 address: the whole header goes out as UTF-8 (RFC 6532)


def encode_address(name: str, display_name: str, addr: str) -> str:
    """One folded address header field (with CRLF): `Name: display <addr>`."""
    display_name = clean_header_value(display_name)
    spec = header_address(addr)
    if not display_name:
        return f"{name}: {spec}\r\n"
    if "=?" in display_name:
        phrase = None  # looks like an encoded-word: encode it so decoders show the literal text
    elif _ATOM_PHRASE.match(display_name):
        phrase = display_name
    elif _QUOTABLE.match(display_name):
        phrase = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = None
    if phrase is not None and len(name) + len(phrase) + len(spec) + 5 <= MAX_LINE:
        return f"{name}: {phrase} <{spec}>\r\n"
    fold = _Folder(name)
    if phrase is not None and phrase[0] != '"':
        for tok in display_name.split(" "):
            fold.add(" ", tok)
    elif phrase is not None and len(phrase) <= MAX_LINE - 2:
        fold.add(" ", phrase)
    else:
        # Atoms stay readable; runs of other words become encoded-words. A run longer than one
        # encoded-word is split between characters (RFC 2047 decoders join adjacent encoded-words;
        # Python 3.11's address parser wrongly shows a space there, for its own output too).
        _unstructured(fold, display_name, encode_long=True, needs_ew=_NEEDS_EW_PHRASE)
    fold.add(" ", f"<{spec}>")
    return fold.text()


def _parse_mailbox(value: str, what: str) -> tuple[str, str]:
    """Split a full mailbox header value ('News <news@example.org>') into name and address."""
    name, addr = email.utils.parseaddr(clean_header_value(value))
    if "@" not in addr:
        raise MessageError(f"{what} {value!r} is not a mailbox like 'News <news@example.org>'",
                           f"fix [newsletter] {what.lower().replace('-', '_')} in digest.toml")
    return name, addr


def _clean_message_id(value: str) -> str:
    value = clean_header_value(value).replace(" ", "").replace("\t", "")
    if not value.startswith("<"):
        value = f"<{value}>"
    if "@" not in value or not value.isascii() or len(value) > 900:
        raise MessageError(f"Message-ID {value!r} is not like '<unique@domain>'")
    return value


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
            name, addr = _parse_mailbox(value, "From")
            return encode_address("From", name, addr)
        return self._cached("\0from", value, make)

    def _reply_to(self, value: str | None) -> str:
        if not value:
            return ""

        def make() -> str:
            name, addr = _parse_mailbox(value, "Reply-To")
            return encode_address("Reply-To", name, addr)
        return self._cached("\0reply-to", value, make)

    def _subject(self, value: str) -> str:
        return self._cached("\0subject", value, lambda: encode_unstructured("Subject", value))

    def _extra(self, name: str, value: str) -> str:
        def make() -> str:
            if not _FIELD_NAME.match(name) or name.lower() in RESERVED:
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
                f"Message-ID: {_clean_message_id(msg.message_id)}\r\n",
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
    m["From"] = clean_header_value(msg.from_addr)
    m["To"] = Address(display_name=clean_header_value(msg.to_name), username=local, domain=domain)
    if msg.reply_to:
        m["Reply-To"] = clean_header_value(msg.reply_to)
    m["Subject"] = clean_header_value(msg.subject)
    m["Date"] = date or datetime.now(timezone.utc)
    m["Message-ID"] = _clean_message_id(msg.message_id)
    for hname, hvalue in msg.headers:
        m[hname] = clean_header_value(hvalue)
    m.set_content(msg.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    m.add_alternative(msg.html, subtype="html", charset="utf-8", cte="quoted-printable")
    policy = email.policy.SMTP if local.isascii() else email.policy.SMTPUTF8
    return m.as_bytes(policy=policy)
