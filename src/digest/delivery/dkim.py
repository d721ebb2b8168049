"""DKIM signing of the built MIME bytes (RFC 6376; ed25519-sha256 per RFC 8463), once per message.

dkimpy provides the canonicalisation, the header selection and hashing, and the folding; the
signatures are made with keys parsed once per run (cryptography, OpenSSL underneath), where
`dkim.sign()` would parse the PEM and run RSA in pure Python for every message. What does not change
per recipient (the tag list but t=, bh= and b=; the header list) is prepared once. Each message's
body is canonicalised and hashed on its own bytes, so every signature verifies on its own.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from digest.addresses import idna_domain
from digest.sections import DKIM_REQUIRED_HEADERS
from digest.delivery.dkimkeys import ED25519, DkimKey, keys_for_settings
from digest.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

SIG_NAME = b"DKIM-Signature"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed body canonicalisation, byte for byte what dkimpy's Relaxed gives.

    dkimpy substitutes `[\\t ]+` everywhere, which in an HTML body matches at thousands of single
    spaces; only tabs, runs of two or more spaces and spaces before a line end change anything,
    and C-speed `in`/`replace` (and a regex with a literal prefix) find those few.
    """
    from dkim.canonicalization import correct_empty_body, strip_trailing_lines

    return correct_empty_body(strip_trailing_lines(_relaxed_lines(body)))


def _relaxed_lines(text: bytes) -> bytes:
    """Relaxed canonicalisation of whole lines, without the end-of-body rule."""
    if b"\t" in text:
        text = text.replace(b"\t", b" ")
    if b"  " in text:
        text = _RUNS.sub(b" ", text)
    if b" \r\n" in text:  # runs are single spaces now: one pass removes trailing whitespace
        text = text.replace(b" \r\n", b"\r\n")
    return text


def _runs():
    import re

    return re.compile(rb"  +")


_RUNS = _runs()
_MAX_PIECES = 4096  # an issue's static pieces are a few hundred; personalised ones fill the rest, then stop


class DkimSigner:
    """Signs MIME bytes with one key, or two (`both`: RSA and ed25519), prepending DKIM-Signature lines."""

    def __init__(self, keys: Sequence[DkimKey], domain: str, *, canonicalization: str = "relaxed/relaxed",
                 headers: Sequence[str] = DKIM_REQUIRED_HEADERS, oversign: Sequence[str] = (),
                 clock: Callable[[], float] = time.time):
        from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError

        self.keys = list(keys)
        self.domain = domain
        self.canonicalization = canonicalization
        try:
            self._policy = CanonicalizationPolicy.from_c_value(canonicalization.encode("ascii"))
        except (InvalidCanonicalizationPolicyError, UnicodeEncodeError):
            raise ConfigError(f"[dkim] canonicalization = {canonicalization!r}: expected relaxed or simple for "
                              "headers and body, e.g. relaxed/relaxed.") from None
        names = [h.lower() for h in headers]
        missing = [h for h in DKIM_REQUIRED_HEADERS if h.lower() not in names]
        if missing:
            raise ConfigError(f"[dkim] headers leaves out {', '.join(missing)}: the signature must cover them "
                              "(RFC 8058 needs List-Unsubscribe and List-Unsubscribe-Post signed).",
                              "add them to [dkim] headers, or remove the setting to use the default list")
        # Each header once, then the oversigned ones again: a copy added on the way fails the signature.
        self.header_names = list(dict.fromkeys(names)) + list(dict.fromkeys(o.lower() for o in oversign))
        self._include = tuple(h.encode("ascii") for h in self.header_names)
        self._relaxed_body = self._policy.body_algorithm.name == b"relaxed"
        self._wanted = frozenset(self._include)
        self._pieces: dict[bytes, bytes] = {}  # body piece → its canonical form (one issue's pieces)
        self._clock = clock

    def __getstate__(self) -> dict:
        return {k: (v if k != "_pieces" else {}) for k, v in self.__dict__.items() if k != "_policy"}

    def __setstate__(self, state: dict) -> None:
        from dkim.canonicalization import CanonicalizationPolicy

        self.__dict__.update(state)
        self._policy = CanonicalizationPolicy.from_c_value(self.canonicalization.encode("ascii"))

    def describe(self) -> str:
        """'rsa-sha256 s=dk1 d=example.org' for each key, and the header list (the dry run shows it)."""
        keys = ", ".join(f"{k.algorithm} s={k.selector}" for k in self.keys)
        return f"{keys}; d={self.domain}; c={self.canonicalization}; h={':'.join(self.header_names)}"

    def sign(self, mime: bytes) -> bytes:
        """`mime` with one DKIM-Signature header per key prepended, each over this message's own bytes."""
        from dkim import rfc822_parse

        cut = mime.find(b"\r\n\r\n")
        if cut < 0:
            raise ValueError("not a message: no blank line after the headers")
        headers, _ = rfc822_parse(mime[:cut + 2] + b"\r\n")  # the headers only: the body is not split into lines
        body = mime[cut + 4:]
        canon = self._relaxed(body) if self._relaxed_body else self._policy.canonicalize_body(body)
        bh = base64.b64encode(hashlib.sha256(canon).digest())
        # Only the signed headers need canonicalising (hash_headers selects them again by name).
        wanted = self._wanted
        canon_headers = self._policy.canonicalize_headers([h for h in headers if h[0].lower() in wanted])
        stamp = str(int(self._clock())).encode("ascii")
        lines = [self._signature(key, canon_headers, bh, stamp) for key in self.keys]
        return b"".join(lines) + mime

    def _relaxed(self, body: bytes) -> bytes:
        """relaxed_body(body), reusing the canonical form of every piece seen before.

        Cut after each '</tr>', a piece ends in '>': no whitespace run and no line-end whitespace
        can span two pieces, so canonicalising piece by piece gives the same bytes. Per recipient
        only the pieces holding a filled merge field are new (the rest are the issue's).
        """
        from dkim.canonicalization import correct_empty_body, strip_trailing_lines

        pieces = body.split(b"</tr>")
        last = pieces.pop()
        cache = self._pieces
        out = []
        for piece in pieces:
            canon = cache.get(piece)
            if canon is None:
                canon = _relaxed_lines(piece + b"</tr>")
                if len(cache) < _MAX_PIECES:
                    cache[piece] = canon
            out.append(canon)
        out.append(_relaxed_lines(last))
        return correct_empty_body(strip_trailing_lines(b"".join(out)))

    def _signature(self, key: DkimKey, canon_headers: list, bh: bytes, stamp: bytes) -> bytes:
        """One DKIM-Signature line, built as dkimpy's `DKIM.gen_header` builds it."""
        from dkim import RE_BTAG, fold, hash_headers

        fields = [(b"v", b"1"), (b"a", key.algorithm.encode("ascii")), (b"c", self._policy.to_c_value()),
                  (b"d", self.domain.encode("ascii")), (b"i", b"@" + self.domain.encode("ascii")),
                  (b"q", b"dns/txt"), (b"s", key.selector.encode("ascii")), (b"t", stamp),
                  (b"h", b" : ".join(self._include)), (b"bh", bh),
                  (b"b", b"0" * 60)]  # a placeholder, so b= folds onto its own line and refolding keeps the rest
        value = fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(SIG_NAME), linesep=b"\r\n")
        value = RE_BTAG.sub(b"\\1", value)
        hasher = hashlib.sha256()
        hash_headers(hasher, self._policy, canon_headers, self._include, (SIG_NAME, b" " + value), dict(fields))
        signature = self._sign_digest(key, hasher.digest())
        fields[-1] = (b"b", base64.b64encode(signature))
        value = fold(b"; ".join(b"=".join(f) for f in fields) + b"\r\n", namelen=len(SIG_NAME), linesep=b"\r\n")
        return SIG_NAME + b": " + value

    @staticmethod
    def _sign_digest(key: DkimKey, digest: bytes) -> bytes:
        if key.algorithm == ED25519:
            return key.private.sign(digest)  # RFC 8463: Ed25519 over the SHA-256 of the header data
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        return key.private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def signing_domain(settings: "Settings") -> str:
    """d=: [dkim] domain, else the From domain, in ASCII (an IDN domain as punycode)."""
    from digest.newsletter import newsletter_identity

    domain = settings.dkim.domain or newsletter_identity(settings).domain
    ascii_domain = idna_domain(domain.strip().rstrip(".").lower())
    if not ascii_domain:
        raise ConfigError(f"{settings.where('dkim')} domain = {domain!r} is not a domain name.")
    return ascii_domain


def signer_for(settings: "Settings", env: Mapping[str, str] | None = None) -> DkimSigner | None:
    """The run's signer from [dkim] (keys read and parsed once), or None when no selector is set."""
    keys = keys_for_settings(settings, env)
    if not keys:
        return None
    d = settings.dkim
    return DkimSigner(keys, signing_domain(settings), canonicalization=d.canonicalization,
                      headers=[str(h) for h in d.headers], oversign=[str(h) for h in d.oversign])


def signing_plan(settings: "Settings", transport_cls, env: Mapping[str, str] | None = None) -> str:
    """One line for the dry run: whether messages will be signed, and how."""
    if not transport_cls.needs_mime:
        return "by the API provider (digest hands it the parts; see its transport page to check it signs)"
    if not settings.dkim.selector:
        return "not signed by digest ([dkim] selector is not set); the relay may sign"
    try:
        signer = signer_for(settings, env)
    except ConfigError as exc:
        return f"NOT USABLE: {exc.message}"
    return f"signed: {signer.describe()}" if signer else "not signed"


def unsigned_warning(settings: "Settings", transport_cls) -> str | None:
    """The one warning a send through SMTP without [dkim] gets (a relay may sign; often not over
    List-Unsubscribe, which one-click unsubscribe needs); None otherwise."""
    if not (transport_cls.needs_mime and transport_cls.reaches_people) or settings.dkim.selector:
        return None
    return ("digest does not DKIM-sign these messages ([dkim] selector is not set). Unless your relay signs them "
            "with h= covering List-Unsubscribe and List-Unsubscribe-Post, Gmail, Yahoo and Outlook may junk or "
            "refuse bulk mail; see the going-live guide, and `digest check ISSUE --dns`.")
