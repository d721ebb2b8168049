"""DKIM keys: loading a private key (a file only its owner can read, or an environment variable),
making one (`digest dkim keygen`), and the DNS TXT record that publishes its public half."""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from digest.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

RSA, ED25519 = "rsa-sha256", "ed25519-sha256"
ALGORITHMS = (RSA, ED25519, "both")
KEYGEN_HINT = "make a key with: digest dkim keygen --selector SELECTOR --out dkim.pem"


@dataclass
class DkimKey:
    """One signing key: its algorithm, its selector, the PEM it came from (for builder processes)."""

    algorithm: str       # rsa-sha256 or ed25519-sha256
    selector: str
    pem: bytes
    source: str          # where it came from, for messages: a path or an environment variable

    def __post_init__(self) -> None:
        self.private = _parse(self.pem, self.algorithm, self.source)

    def __getstate__(self) -> dict:
        # cryptography's key objects do not pickle: a builder process parses the PEM once itself.
        return {k: v for k, v in self.__dict__.items() if k != "private"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.private = _parse(self.pem, self.algorithm, self.source)

    def public_b64(self) -> str:
        """The p= value: DER SubjectPublicKeyInfo for RSA, the raw 32-byte key for ed25519 (RFC 8463)."""
        from cryptography.hazmat.primitives import serialization as ser

        pub = self.private.public_key()
        if self.algorithm == ED25519:
            raw = pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        else:
            raw = pub.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(raw).decode("ascii")

    def record(self) -> str:
        """The TXT record's text: 'v=DKIM1; k=rsa; p=…'."""
        return f"v=DKIM1; k={'ed25519' if self.algorithm == ED25519 else 'rsa'}; p={self.public_b64()}"


def _parse(pem: bytes, algorithm: str, source: str):
    """A cryptography private key of the expected type; ConfigError naming `source` otherwise."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        if not pem.lstrip().startswith(b"-----BEGIN") and algorithm == ED25519:
            # dkimpy's dknewkey writes an ed25519 key as its base64 32-byte seed
            key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(pem.strip(), validate=True))
        else:
            key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"DKIM key from {source} could not be read: {exc}.", KEYGEN_HINT) from None
    want = ed25519.Ed25519PrivateKey if algorithm == ED25519 else rsa.RSAPrivateKey
    if not isinstance(key, want):
        raise ConfigError(f"DKIM key from {source} is not an {'ed25519' if algorithm == ED25519 else 'RSA'} key, "
                          f"as [dkim] algorithm {algorithm} needs.", KEYGEN_HINT)
    if algorithm == RSA and key.key_size < 1024:
        raise ConfigError(f"DKIM key from {source} has {key.key_size} bits: receivers ignore RSA keys under 1024 "
                          "bits.", KEYGEN_HINT)
    return key


def read_key_file(path: Path) -> bytes:
    """The key file's bytes; refused when anyone but its owner may read or change it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"DKIM key file {path}: {exc.strerror}.", KEYGEN_HINT) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"DKIM key file {path} has mode {stat.filemode(mode)}: others could read the key "
                          "that signs as your domain.", f"chmod 600 {path}")
    return path.read_bytes()


def _key(settings: "Settings", algorithm: str, selector: str | None, key_file: str | None, key_env: str,
         env: Mapping[str, str]) -> DkimKey:
    where = settings.where("dkim")
    if not selector:
        raise ConfigError(f"{where}: algorithm {settings.dkim.algorithm} needs a selector for its "
                          f"{algorithm} key.", "set ed25519_selector (the ed25519 key's selector)")
    if key_file:
        path = Path(key_file).expanduser()
        path = path if path.is_absolute() else settings.root / path
        return DkimKey(algorithm, selector, read_key_file(path), str(path))
    text = env.get(key_env, "")
    if not text:
        raise ConfigError(f"{where}: no DKIM key: neither key_file is set nor the environment variable {key_env}.",
                          f"set key_file = \"dkim.pem\" (chmod 600) or export {key_env}; {KEYGEN_HINT}")
    return DkimKey(algorithm, selector, text.encode("utf-8"), f"environment variable {key_env}")


def keys_for_settings(settings: "Settings", env: Mapping[str, str] | None = None) -> list[DkimKey]:
    """The configured signing keys (one, or two for `both`); [] when [dkim] selector is not set."""
    env = os.environ if env is None else env
    d = settings.dkim
    if not d.selector:
        return []
    if d.algorithm not in ALGORITHMS:
        raise ConfigError(f"{settings.where('dkim')} algorithm = {d.algorithm!r}: expected one of "
                          f"{', '.join(ALGORITHMS)}.")
    first = ED25519 if d.algorithm == ED25519 else RSA
    keys = [_key(settings, first, d.selector, d.key_file, d.key_env, env)]
    if d.algorithm == "both":
        keys.append(_key(settings, ED25519, d.ed25519_selector, d.ed25519_key_file, d.ed25519_key_env, env))
    return keys


def generate_pem(algorithm: str, bits: int = 2048) -> bytes:
    """A new private key as PKCS#8 PEM (RSA of `bits` bits, or ed25519)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm == ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def write_private(path: Path, pem: bytes) -> None:
    """Write a new key file readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: digest does not overwrite a key.",
                          "choose another --out (a new selector per key makes rotation safe)") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def txt_strings(record: str, size: int = 255) -> list[str]:
    """A TXT record's text cut into the ≤255-byte strings DNS holds (an RSA 2048 record needs two)."""
    return [record[i:i + size] for i in range(0, len(record), size)] or [""]


def zone_line(selector: str, domain: str, record: str) -> str:
    """The record as a zone-file line: name, TTL-less, TXT, quoted strings."""
    quoted = " ".join(f'"{part}"' for part in txt_strings(record))
    return f"{selector}._domainkey.{domain}. IN TXT ( {quoted} )"


def parse_tags(text: str) -> dict[str, str]:
    """A DKIM/DMARC tag list ('v=DKIM1; k=rsa; p=…') as a dict; whitespace inside values removed."""
    tags = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def new_key_file(path: Path, algorithm: str, selector: str, bits: int = 2048) -> DkimKey:
    """`digest dkim keygen`: write a new private key to `path` (0600, never over a file) and return it."""
    if algorithm not in (RSA, ED25519):
        raise ConfigError(f"unknown DKIM algorithm {algorithm!r}: expected {RSA} or {ED25519}.")
    if algorithm == RSA and bits < 2048:
        raise ConfigError(f"an RSA key of {bits} bits is too weak for a new DKIM key.", "use --bits 2048 or more")
    pem = generate_pem(algorithm, bits)
    write_private(path, pem)
    return DkimKey(algorithm, selector, pem, str(path))
