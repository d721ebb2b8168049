"""Unsubscribe tokens: round trip, tamper, rotation, wrong newsletter, key ring configuration."""

from __future__ import annotations

import base64

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from digest.audience.tokens import DEV_KID, DEV_SECRET, KeyRing, TokenError

K1 = "k1:bn7IWq1aSdrgHIDxwfs0nqQB1JcTlIhZZNIu8yz2sRs"  # test keys, made like the docs say
K2 = "k2:f7xHXOxh8TGfFTXsJYxRGMOE3KI63qg9Hihwi8zeZKM"
NL = "innovation-hub.example.org"


def ring(text: str = K1) -> KeyRing:
    return KeyRing.from_env("DIGEST_UNSUBSCRIBE_KEYS", {"DIGEST_UNSUBSCRIBE_KEYS": text})


def b64(s: str) -> str:
    return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()


def test_round_trip_recovers_newsletter_and_address():
    token = ring().sign(NL, "Zoë.Smith@Bücher.de")
    assert ring().verify(token) == (NL, "Zoë.Smith@Bücher.de")
    assert ring().verify(token, NL) == (NL, "Zoë.Smith@Bücher.de")


def test_token_is_url_safe_and_carries_kid_and_a_128_bit_mac():
    token = ring().sign(NL, "ann@example.org")
    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in token)
    kid, nl, addr, mac = token.split(".")
    assert (kid, nl, addr) == ("k1", b64(NL), b64("ann@example.org"))
    assert len(base64.urlsafe_b64decode(mac + "==")) == 16


def test_every_single_character_change_is_rejected():
    token = ring().sign(NL, "ann@example.org")
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        for other in ("A", "B", "-", "_", "z"):
            if other != ch:
                tampered = token[:i] + other + token[i + 1:]
                with pytest.raises(TokenError):
                    ring().verify(tampered)


def test_swapped_address_is_rejected():
    token = ring().sign(NL, "ann@example.org")
    kid, nl, _, mac = token.split(".")
    with pytest.raises(TokenError, match="signature does not match"):
        ring().verify(".".join((kid, nl, b64("bob@example.org"), mac)))


def test_unknown_kid_is_rejected_with_a_rotation_hint():
    token = ring(K2).sign(NL, "ann@example.org")
    with pytest.raises(TokenError, match=r"unknown key id 'k2'(.|\n)*keep retired keys in DIGEST_UNSUBSCRIBE_KEYS"):
        ring(K1).verify(token)


def test_rotation_new_key_signs_old_key_still_verifies():
    old_token = ring(K1).sign(NL, "ann@example.org")
    rotated = ring(f"{K2},{K1}")
    assert rotated.verify(old_token) == (NL, "ann@example.org")
    new_token = rotated.sign(NL, "ann@example.org")
    assert new_token.startswith("k2.")
    assert rotated.verify(new_token) == (NL, "ann@example.org")
    with pytest.raises(TokenError, match="unknown key id 'k2'"):
        ring(K1).verify(new_token)


def test_same_kid_with_another_secret_is_rejected():
    token = ring("k1:grDnrkGjF3x8JP-gl1tl4I2HE8VYD32gNpuZOWepDKU").sign(NL, "ann@example.org")
    with pytest.raises(TokenError, match="signature does not match"):
        ring().verify(token)


def test_wrong_newsletter_is_rejected():
    token = ring().sign("other.example.org", "ann@example.org")
    with pytest.raises(TokenError, match="token is for newsletter 'other.example.org', not 'innovation-hub"):
        ring().verify(token, NL)
    # Re-labelling the token's newsletter breaks the signature.
    kid, _, addr, mac = token.split(".")
    with pytest.raises(TokenError, match="signature does not match"):
        ring().verify(".".join((kid, b64(NL), addr, mac)), NL)


def test_address_identity_is_case_insensitive():
    r = ring()
    mac = lambda t: t.rsplit(".", 1)[1]  # noqa: E731
    assert mac(r.sign(NL, "Ann@Example.ORG")) == mac(r.sign(NL, "ann@example.org"))
    assert mac(r.sign(NL, "x@bücher.de")) == mac(r.sign(NL, "x@xn--bcher-kva.de"))
    assert mac(r.sign(NL, "ann@example.org")) != mac(r.sign(NL, "anne@example.org"))
    kid, nl, _, m = r.sign(NL, "Ann@Example.ORG").split(".")
    assert r.verify(".".join((kid, nl, b64("ann@example.org"), m))) == (NL, "ann@example.org")


@pytest.mark.parametrize("token, fragment", [
    ("", "expected 4 fields separated by '.', got 1"),
    ("k1.abc.def", "expected 4 fields separated by '.', got 3"),
    ("k1.a.b.c.d", "expected 4 fields separated by '.', got 5"),
    ("k1.a!b." + b64("ann@example.org") + ".AAAA", "the newsletter field is not base64url"),
    ("k1." + b64(NL) + ".a=b.AAAA", "the address field is not base64url"),
    ("k1." + b64(NL) + "." + b64("ann@example.org") + ".A", "the signature field is not base64url"),
    ("k1." + b64(NL) + ".B." + "A" * 22, "the address field is not base64url"),
    ("k1." + b64(NL) + ".__8." + "A" * 22, "a field is not UTF-8 text"),
    ("k1." + b64(NL) + "." + b64("ann@example.org") + ".AAAA", "signature does not match"),
])
def test_malformed_tokens_are_rejected(token, fragment):
    with pytest.raises(TokenError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        ring().verify(token)


def test_from_env_unset_without_dev_key_names_the_variable_and_how_to_generate():
    with pytest.raises(ConfigError) as info:
        KeyRing.from_env("MY_KEYS", {})
    text = str(info.value)
    assert "environment variable MY_KEYS is not set" in text
    assert "secrets.token_urlsafe(32)" in text and "export MY_KEYS=" in text


def test_from_env_unset_with_dev_key_uses_the_dev_kid():
    r = KeyRing.from_env("MY_KEYS", {}, allow_dev_key=True)
    assert r.is_dev and r.signing_kid == DEV_KID
    token = r.sign(NL, "ann@example.org")
    assert token.startswith("dev.")
    with pytest.raises(TokenError, match="unknown key id 'dev'"):
        ring().verify(token)  # a production ring never accepts dev-signed links
    assert not ring().is_dev


def test_from_env_prefers_the_real_keys_over_the_dev_key():
    r = KeyRing.from_env("MY_KEYS", {"MY_KEYS": K1}, allow_dev_key=True)
    assert not r.is_dev and r.signing_kid == "k1"


@pytest.mark.parametrize("value, fragment", [
    ("nocolon", "entry 1 is not 'kid:secret'"),
    (K1 + ",", "entry 2 is not 'kid:secret'"),
    ("k 1:" + "s" * 20, "entry 1 is not 'kid:secret'"),
    ("k1:tinysecret", "the secret of key 'k1' is shorter than 16 characters"),
    (f"{K1},{K1}", "key id 'k1' appears twice"),
])
def test_bad_key_ring_is_a_config_error_without_the_secret(value, fragment):
    with pytest.raises(ConfigError) as info:
        ring(value)
    assert fragment in str(info.value)
    assert "DIGEST_UNSUBSCRIBE_KEYS" in str(info.value)
    for entry in value.split(","):
        secret = entry.partition(":")[2]
        assert not secret or secret not in str(info.value)


def test_key_ring_from_settings_uses_keys_env(tmp_path):
    (tmp_path / "digest.toml").write_text('[unsubscribe]\nkeys_env = "NEWS_KEYS"\n', encoding="utf-8")
    settings = load_settings(tmp_path / "digest.toml", env={})
    r = KeyRing.for_settings(settings, {"NEWS_KEYS": K2})
    assert r.signing_kid == "k2"
    with pytest.raises(ConfigError, match="NEWS_KEYS is not set"):
        KeyRing.for_settings(settings, {})


# --- keys that are public or guessable ---------------------------------------------------------

@pytest.mark.parametrize("value, fragment", [
    (f"{K1},dev2:{DEV_SECRET.decode()}", "key 'dev2' is the public development key"),
    (f"{K1},dev:{DEV_SECRET.decode()}", "key 'dev' is the public development key"),
    ("dev:i5ZgT4aPzsQZkU1mXD78PmMcWH4oGVLAc_WrUnF0kJo", "key id 'dev' is kept for the public development key"),
    ("k1:IlHtt9WObiDxwigKZ4A23CgqP2i5CBsesNukJCcS72A", "key 'k1' is the example printed in digest's documentation"),
    ("k1:aaaaaaaaaaaaaaaa", "the secret of key 'k1' is too easy to guess"),
    ("k1:abcdefghijklmnopqrstuvwxyz", "the secret of key 'k1' is too easy to guess"),
    ("k1:0123456789012345678901234", "the secret of key 'k1' is too easy to guess"),
    ("k1:abababababababababababab", "the secret of key 'k1' is too easy to guess"),
])
def test_public_or_weak_keys_are_refused_with_how_to_make_one(value, fragment):
    with pytest.raises(ConfigError) as info:
        ring(value)
    text = str(info.value)
    assert fragment in text
    assert "secrets.token_urlsafe(32)" in text  # how to generate a real one
    for entry in value.split(","):
        assert entry.partition(":")[2] not in text


def test_a_forged_dev_token_does_not_verify_against_a_ring_that_tried_to_hold_the_dev_key():
    forged = KeyRing.from_env("K", {}, allow_dev_key=True).sign(NL, "victim@example.org")
    with pytest.raises(ConfigError):
        ring(f"{K1},dev:{DEV_SECRET.decode()}")
    with pytest.raises(TokenError, match="unknown key id 'dev'"):
        ring().verify(forged)


def test_generated_keys_are_accepted():
    import secrets

    for _ in range(200):  # token_urlsafe(16) is the shortest key worth having: 128 bits
        ring(f"k1:{secrets.token_urlsafe(16)},k2:{secrets.token_urlsafe(32)},k3:{secrets.token_hex(16)}")
