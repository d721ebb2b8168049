"""Signed unsubscribe tokens: HMAC-SHA256 over (newsletter id, address key), keys from an env var.

A token is four URL-safe fields joined by '.':

    <kid>.<base64url(newsletter id)>.<base64url(address)>.<base64url(first 16 bytes of the MAC)>

It carries the address so `digest unsubscribe --token …` can recover it, and the key id so old links
keep working after a key rotation (keep the old `kid:secret` pair in the ring, put the new one first).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import math
import os
import re
from typing import Mapping

from digest.addresses import address_key, casefold_address_key
from digest.errors import ConfigError, DigestError

DEFAULT_ENV = "DIGEST_UNSUBSCRIBE_KEYS"
MAC_BYTES = 16            # 128-bit truncated HMAC-SHA256
MIN_SECRET_CHARS = 16
DEV_KID = "dev"
# Fixed and public on purpose: only for local builds / the outbox transport, never for real sends.
DEV_SECRET = b"digest-development-key--not-secret--do-not-use-for-sending"
# Secrets anyone can read: the development key and the example the documentation prints. A token
# signed with one of them is a forgery anybody can make.
PUBLISHED_SECRETS = {DEV_SECRET: "the public development key",
                     b"IlHtt9WObiDxwigKZ4A23CgqP2i5CBsesNukJCcS72A": "the example printed in digest's documentation"}
MIN_SECRET_BITS = 64  # estimated from the characters' spread; token_urlsafe(16) gives ~90
GENERATE_HINT = ("""generate one with: python -c "import secrets; print('k1:' + secrets.token_urlsafe(32))" """
                 "and export {var}=<that output> (rotate: put the new kid:secret first, keep the old ones after it)")
_CONTEXT = b"digest-unsubscribe-v1"
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_B64 = re.compile(r"[A-Za-z0-9_-]+\Z")


class TokenError(DigestError):
    """An unsubscribe token is malformed, altered, signed with an unknown key, or for another newsletter."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict base64url decoding: only the canonical spelling of the bytes is accepted."""
    if not _B64.match(text):
        raise TokenError(f"unsubscribe token is malformed: the {what} field is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise TokenError(f"unsubscribe token is malformed: the {what} field is not base64url") from None
    # Unused low bits of the last character would otherwise let two spellings decode alike.
    if _b64(data) != text:
        raise TokenError(f"unsubscribe token is malformed: the {what} field is not canonical base64url")
    return data


class KeyRing:
    """HMAC keys by key id; the first key signs new tokens, every key verifies."""

    def __init__(self, keys: list[tuple[str, bytes]], *, source: str = "key ring"):
        if not keys:
            raise ConfigError(f"{source}: no signing keys")
        self.keys = dict(keys)
        self.signing_kid = keys[0][0]
        self.source = source

    @property
    def is_dev(self) -> bool:
        """True when signing with the fixed development key (never for a real send)."""
        return self.signing_kid == DEV_KID and self.keys[DEV_KID] == DEV_SECRET

    @classmethod
    def parse(cls, text: str, *, source: str = DEFAULT_ENV) -> "KeyRing":
        """Parse 'kid:secret,kid2:secret2' (first signs). Errors name the entry, never the secret."""
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(text.split(","), 1):
            entry = entry.strip()
            kid, sep, secret = entry.partition(":")
            kid, secret = kid.strip(), secret.strip()
            if not sep or not _KID.match(kid):
                raise ConfigError(
                    f"environment variable {source}: entry {position} is not 'kid:secret' "
                    "(kid = 1-32 letters, digits, '-' or '_')",
                    GENERATE_HINT.format(var=source))
            if len(secret) < MIN_SECRET_CHARS:
                raise ConfigError(
                    f"environment variable {source}: the secret of key '{kid}' is shorter than "
                    f"{MIN_SECRET_CHARS} characters", GENERATE_HINT.format(var=source))
            _refuse_public_or_weak(kid, secret, source)
            if kid in dict(keys):
                raise ConfigError(f"environment variable {source}: key id '{kid}' appears twice",
                                  "give each key its own id")
            keys.append((kid, secret.encode("utf-8")))
        return cls(keys, source=source)

    @classmethod
    def from_env(cls, env_var: str = DEFAULT_ENV, env: Mapping[str, str] | None = None, *,
                 allow_dev_key: bool = False) -> "KeyRing":
        """The key ring in `env_var`; the fixed 'dev' key when it is unset and allow_dev_key is True."""
        env = os.environ if env is None else env
        text = env.get(env_var, "").strip()
        if not text:
            if allow_dev_key:
                return cls([(DEV_KID, DEV_SECRET)], source=f"development key ({env_var} not set)")
            raise ConfigError(
                f"environment variable {env_var} is not set (unsubscribe link signing keys)",
                GENERATE_HINT.format(var=env_var))
        return cls.parse(text, source=env_var)

    @classmethod
    def for_settings(cls, settings, env: Mapping[str, str] | None = None, *,
                     allow_dev_key: bool = False) -> "KeyRing":
        """The key ring named by settings.unsubscribe.keys_env."""
        return cls.from_env(settings.unsubscribe.keys_env, env, allow_dev_key=allow_dev_key)

    @staticmethod
    def _mac(secret: bytes, newsletter_id: str, key: str) -> bytes:
        message = b"\0".join((_CONTEXT, newsletter_id.encode("utf-8"), key.encode("utf-8")))
        return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]

    def _signed(self, mac: bytes, secret: bytes, newsletter_id: str, email: str) -> bool:
        """Whether `mac` signs (newsletter, address): by its key, or by the casefolded key that tokens
        issued before carry (only where the two differ: 'ß', 'ﬀ', final sigma …)."""
        if len(mac) != MAC_BYTES:
            return False
        key = address_key(email)
        if hmac.compare_digest(mac, self._mac(secret, newsletter_id, key)):
            return True
        old = casefold_address_key(email)
        return old != key and hmac.compare_digest(mac, self._mac(secret, newsletter_id, old))

    def sign(self, newsletter_id: str, email: str) -> str:
        """A URL-safe token for (newsletter, address), signed with the first key."""
        if not newsletter_id or "\0" in newsletter_id or "\0" in email or "@" not in email:
            raise TokenError(f"cannot sign an unsubscribe token for newsletter {newsletter_id!r}, "
                             f"address {email!r}")
        mac = self._mac(self.keys[self.signing_kid], newsletter_id, address_key(email))
        return ".".join((self.signing_kid, _b64(newsletter_id.encode("utf-8")),
                         _b64(email.encode("utf-8")), _b64(mac)))

    def verify(self, token: str, newsletter_id: str | None = None) -> tuple[str, str]:
        """(newsletter id, address) from a token; TokenError if it was altered or does not fit."""
        token = token.strip()
        fields = token.split(".")
        if len(fields) != 4 or len(token) > 2048:
            raise TokenError(f"unsubscribe token is malformed: expected 4 fields separated by '.', "
                             f"got {len(fields)}", "copy the whole link; mail clients sometimes wrap it")
        kid, nl_b64, email_b64, mac_b64 = fields
        if kid not in self.keys:
            raise TokenError(f"unsubscribe token was signed with unknown key id {kid[:32]!r}",
                             f"keep retired keys in {self.source} after a rotation so old links still verify")
        try:
            nl = _unb64(nl_b64, "newsletter").decode("utf-8")
            email = _unb64(email_b64, "address").decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError("unsubscribe token is malformed: a field is not UTF-8 text") from None
        mac = _unb64(mac_b64, "signature")
        if not self._signed(mac, self.keys[kid], nl, email):
            raise TokenError("unsubscribe token signature does not match (altered, or signed with another secret)")
        if newsletter_id is not None and nl != newsletter_id:
            raise TokenError(f"unsubscribe token is for newsletter {nl!r}, not {newsletter_id!r}")
        return nl, email


def _refuse_public_or_weak(kid: str, secret: str, source: str) -> None:
    """A ConfigError for a secret others know or can guess (never quoting it)."""
    hint = GENERATE_HINT.format(var=source)
    known = PUBLISHED_SECRETS.get(secret.encode("utf-8"))
    if known:
        raise ConfigError(f"environment variable {source}: key '{kid}' is {known}: anyone can sign "
                          "unsubscribe links with it", hint)
    if kid == DEV_KID:
        raise ConfigError(f"environment variable {source}: the key id '{DEV_KID}' is kept for the public "
                          "development key; a real key ring never holds it", hint)
    if _guessable(secret):
        raise ConfigError(f"environment variable {source}: the secret of key '{kid}' is too easy to guess "
                          "(repeated or consecutive characters)", hint)


def _guessable(secret: str) -> bool:
    """True for 'aaaa…', 'abcd…', '0123…', 'abab…': little spread, or mostly steps of one."""
    counts = collections.Counter(secret)
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())  # Shannon estimate, whole secret
    steps = sum(1 for a, b in zip(secret, secret[1:]) if abs(ord(a) - ord(b)) <= 1)
    return bits < MIN_SECRET_BITS or steps > (len(secret) - 1) / 2


def address_from_token(settings, token: str) -> str:
    """The address a token from this newsletter's unsubscribe link was signed for (TokenError if not)."""
    from digest.newsletter import newsletter_identity

    _, address = KeyRing.for_settings(settings).verify(token, newsletter_identity(settings).newsletter_id)
    return address
