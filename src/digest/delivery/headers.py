"""RFC 5322 / RFC 2047 header lines: folding, encoded-words, addresses with IDN domains.

Header safety: CR, LF and NUL never reach a header (digest.text.header_safe), and any word that
looks like an RFC 2047 encoded-word (`=?…?=`) is itself encoded, so a decoder shows it as the
literal text it was.
"""

from __future__ import annotations

import binascii
import email.utils
import functools
import re

from digest.addresses import idna_domain
from digest.errors import DigestError
from digest.text import header_safe

MAX_LINE = 78        # RFC 5322 SHOULD (header lines, excluding CRLF)
HARD_LINE = 998      # RFC 5322 MUST
EW_MAX = 75          # RFC 2047: an encoded-word is at most 75 characters
_EW_OVERHEAD = len("=?utf-8?q??=")

# Headers build() writes itself; an extra header with one of these names would duplicate them.
RESERVED = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "sender", "return-path",
})

FIELD_NAME = re.compile(r"[!-9;-~]+\Z")            # printable ASCII except ':'
_WORDS = re.compile(r"[ \t]+|[^ \t]+")              # only SP/HTAB are folding whitespace
# A word goes out as-is only when it is printable ASCII and cannot be mistaken for an encoded-word.
_NEEDS_EW = re.compile(r"[^!-~]|=\?")
# In a display name a word may stay as-is only when it is an atom (RFC 5322 atext).
_NEEDS_EW_PHRASE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|=\?")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_QUOTABLE = re.compile(r"[ !-~]+\Z")
_PLAIN = re.compile(r"[ !-~]*\Z")                   # printable ASCII and spaces
_BAD_ADDR_CHARS = re.compile(r"[\s<>(),;:\"\[\]\\]")
# Q encoding: bytes that may stay literal inside an encoded-word even in a phrase (RFC 2047 5(3)).
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_QBYTE = ["_" if b == 0x20 else chr(b) if b in _Q_LITERAL else f"={b:02X}" for b in range(256)]


class MessageError(DigestError):
    """A message cannot be built: a bad address, header name or an unfoldable header value."""


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
    value = header_safe(value)
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
    addr = header_safe(addr)
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
    display_name = header_safe(display_name)
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


def parse_mailbox(value: str, what: str) -> tuple[str, str]:
    """Split a full mailbox header value ('News <news@example.org>') into name and address."""
    name, addr = email.utils.parseaddr(header_safe(value))
    if "@" not in addr:
        raise MessageError(f"{what} {value!r} is not a mailbox like 'News <news@example.org>'",
                           f"fix [newsletter] {what.lower().replace('-', '_')} in digest.toml")
    return name, addr


def clean_message_id(value: str) -> str:
    value = header_safe(value).replace(" ", "").replace("\t", "")
    if not value.startswith("<"):
        value = f"<{value}>"
    if "@" not in value or not value.isascii() or len(value) > 900:
        raise MessageError(f"Message-ID {value!r} is not like '<unique@domain>'")
    return value
