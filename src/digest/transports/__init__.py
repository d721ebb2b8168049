"""Transport registry: a name in digest.toml → the class that sends that way (imported lazily)."""

from __future__ import annotations

import difflib
import importlib

from digest.errors import ConfigError

# name → "module:Class". Imported only when chosen, so `digest --help` stays fast.
REGISTRY: dict[str, str] = {
    "outbox": "digest.transports.outbox:OutboxTransport",
    "smtp": "digest.transports.smtp:SMTPTransport",
    "postmark": "digest.transports.postmark:PostmarkTransport",
    "sendgrid": "digest.transports.sendgrid:SendGridTransport",
    "mailgun": "digest.transports.mailgun:MailgunTransport",
    "resend": "digest.transports.resend:ResendTransport",
}


def transport_class(name: str):
    """The Transport subclass registered under `name`; an unknown name is a ConfigError."""
    if name not in REGISTRY:
        guess = difflib.get_close_matches(name, list(REGISTRY), n=1)
        did = f" Did you mean '{guess[0]}'?" if guess else ""
        raise ConfigError(f"unknown transport '{name}'.{did}",
                          f"set [send] transport to one of: {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def settings_classes() -> dict[str, type]:
    """Each transport's name and the dataclass of its digest.toml section (imports every transport)."""
    classes = {}
    for name in REGISTRY:
        cls = transport_class(name).settings_class
        if cls is not None:
            classes[name] = cls
    return classes
