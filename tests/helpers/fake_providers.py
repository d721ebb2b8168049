"""Local stand-ins for the mail-service APIs: a real HTTP server on 127.0.0.1 per provider.

Each fake checks what the real provider checks (auth header, JSON / form shape, per-call limits,
required fields) and answers with the provider's documented success and error bodies. Scriptable:

    with FakePostmark() as fake:                      # random port; fake.url → "http://127.0.0.1:N"
        fake.reject("bad@example.org", "invalid")       # per-recipient refusal (provider's own way)
        fake.then(429, headers={"Retry-After": "2"})    # the next call gets this whole-request reply
        fake.then(500)                                  # …and the one after that
        fake.hang(1.0, process=True)                    # next call: accept it, answer after 1 s
        fake.drop()                                     # next call: connection closed, no answer
        ...
        fake.posted["a@example.org"]    # how many times that address arrived in a call
        fake.accepted["a@example.org"]  # how many times the fake accepted it for delivery
        fake.calls                      # every Call (path, headers, payload, recipients, port, status)

Reject kinds: "invalid" (bad address), "inactive" (suppressed at the provider — only Postmark says
so at send time; the others accept and drop later, as the real services do), "transient" (Postmark
only: the first post of that address gets a per-item maintenance error, later posts succeed).
"""


from __future__ import annotations

import json

from tests.helpers.fake_base import Call, FakeProvider, Reply, Scripted
from tests.helpers.fake_mailgun import FakeMailgun
from tests.helpers.fake_postmark import FakePostmark
from tests.helpers.fake_resend import FakeResend
from tests.helpers.fake_sendgrid import FakeSendGrid

__all__ = [
    "FAKES",
    "TOKEN_ENV",
    "Call",
    "FakeMailgun",
    "FakePostmark",
    "FakeProvider",
    "FakeResend",
    "FakeSendGrid",
    "Reply",
    "Scripted",
    "outgoing",
    "settings_for",
]

FAKES = {"postmark": FakePostmark, "sendgrid": FakeSendGrid, "mailgun": FakeMailgun, "resend": FakeResend}


# ------------------------------------------------------------------------------------------------
# Helpers shared by the transport tests and bench/api_send.py.
# ------------------------------------------------------------------------------------------------

TOKEN_ENV = {"postmark": "POSTMARK_TOKEN", "sendgrid": "SENDGRID_API_KEY",
             "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}


def outgoing(n: int, *, start: int = 1, html_bytes: int = 0, prefix: str = "reader"):
    """`n` personalised OutgoingMessages to reader<i>@example.org (html padded to `html_bytes`)."""
    from digest.outgoing import OutgoingMessage

    pad = "x" * max(0, html_bytes - 200)
    out = []
    for i in range(start, start + n):
        addr = f"{prefix}{i}@example.org"
        out.append(OutgoingMessage(
            recipient_id=i, to_email=addr, to_name=f"Reader {i}",
            from_addr="Innovation Hub News <news@example.org>", envelope_from="bounces@example.org",
            reply_to="editor@example.org", subject="Learning & Innovation Highlights 2023",
            html=f"<html><body><p>Hello Reader {i}</p><a href=\"https://example.org/u?t={i}\">unsubscribe</a>"
                 f"<!--{pad}--></body></html>",
            text=f"Hello Reader {i}\nUnsubscribe: https://example.org/u?t={i}\n",
            message_id=f"<issue-2023.{i}@example.org>",
            headers=(("List-Unsubscribe", f"<https://example.org/u?t={i}>"),
                     ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                     ("List-Id", "Innovation Hub News <news.example.org>"))))
    return out


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def settings_for(tmp_path, provider: str, fake: FakeProvider | None = None, **extra):
    """Settings from a digest.toml in tmp_path whose [provider] points at the fake."""
    from digest.config import load_settings

    table = dict(extra)
    if fake is not None:
        table.setdefault("base_url", fake.url)
        if provider == "mailgun":
            table.setdefault("domain", getattr(fake, "domain", "mg.example.org"))
    lines = ["[send]", f'transport = "{provider}"', "", f"[{provider}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path = tmp_path / "digest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(path, env={})

