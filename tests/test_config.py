"""Settings: a misspelt key or section, a wrong type, and the DIGEST_* environment over the file."""

from __future__ import annotations

import pytest

from digest.config import load_settings
from digest.errors import ConfigError


def test_unknown_settings_key_lists_allowed(project):
    toml = project / "digest.toml"
    toml.write_text(toml.read_text().replace("postal_address =", "postal_adress ="))
    with pytest.raises(ConfigError) as info:
        load_settings(toml)
    msg = str(info.value)
    assert "digest.toml [newsletter]: unknown setting 'postal_adress'. Did you mean 'postal_address'?" in msg
    assert "allowed keys:" in msg and "reply_to" in msg


def test_wrong_settings_type(project):
    toml = project / "digest.toml"
    toml.write_text(toml.read_text().replace("connections = 1", 'connections = "two"'))
    with pytest.raises(ConfigError) as info:
        load_settings(toml)
    assert "digest.toml [send] connections = 'two': expected a whole number, got str" in str(info.value)


def test_unknown_section(project):
    toml = project / "digest.toml"
    toml.write_text(toml.read_text() + "\n[smpt]\nhost = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(toml)
    assert "unknown section [smpt]. Did you mean [smtp]?" in str(info.value)


def test_environment_overrides_file(project):
    settings = load_settings(project / "digest.toml", env={"DIGEST_SEND_RATE": "12.5", "DIGEST_SEND_TRANSPORT": "smtp"})
    assert settings.send.rate == 12.5
    assert settings.send.transport == "smtp"
    with pytest.raises(ConfigError) as info:
        load_settings(project / "digest.toml", env={"DIGEST_SEND_CONNECTIONS": "many"})
    assert "DIGEST_SEND_CONNECTIONS='many'" in str(info.value)


def test_environment_overrides_transport_sections(project):
    from digest.transports.smtp import SMTPSettings
    from digest.config import load_section

    settings = load_settings(project / "digest.toml", env={
        "DIGEST_SMTP_HOST": "mail.example.org", "DIGEST_SMTP_PORT": "2525", "DIGEST_SMTP_PASSWORD": "secret"})
    smtp = load_section(SMTPSettings, settings.transport_section("smtp"), settings.where("smtp"))
    assert (smtp.host, smtp.port) == ("mail.example.org", 2525)
    bad = load_settings(project / "digest.toml", env={"DIGEST_SMTP_PORT": "twenty-five"})
    with pytest.raises(ConfigError) as info:
        load_section(SMTPSettings, bad.transport_section("smtp"), bad.where("smtp"))
    assert "DIGEST_SMTP_PORT='twenty-five'" in str(info.value)


def test_a_transport_secret_in_the_environment_never_sits_in_the_settings(project):
    import pickle

    from digest.config import load_section
    from digest.transports.smtp import SMTPSettings

    secret = "hunter2-correct-horse"
    settings = load_settings(project / "digest.toml", env={
        "DIGEST_SMTP_HOST": "mail.example.org", "DIGEST_SMTP_PASSWORD": secret,
        "DIGEST_POSTMARK_TOKEN": secret, "DIGEST_SMTP_NO_SUCH_SETTING": secret})
    assert secret.encode() not in pickle.dumps(settings)  # not in the object, however it is walked
    assert secret not in repr(settings)
    assert "password" not in settings.transport_section("smtp")
    smtp = load_section(SMTPSettings, settings.transport_section("smtp"), settings.where("smtp"))
    assert smtp.host == "mail.example.org"  # the settings themselves still come from the environment
