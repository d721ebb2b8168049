"""Send one real message through each provider — only when its credentials are in the environment.

    POSTMARK_TOKEN=… DIGEST_LIVE_TO=you@example.org DIGEST_LIVE_FROM='News <news@your-domain>' \\
        python -m pytest tests/transports/test_live_providers.py -m live

Per provider: POSTMARK_TOKEN (and POSTMARK_STREAM, the ID of the server's broadcast stream, default
"broadcast": the transport refuses any other kind before sending), SENDGRID_API_KEY, MAILGUN_API_KEY
+ MAILGUN_DOMAIN (optional MAILGUN_REGION=eu), RESEND_API_KEY. DIGEST_LIVE_FROM must be a sender the
provider has verified. Optional DIGEST_LIVE_NAME: a display name for DIGEST_LIVE_TO (try one with a
comma, to see how the provider writes it).
"""

from __future__ import annotations

import os
import time

import pytest

from digest.transports import transport_class
from digest.outgoing import OutgoingMessage
from digest.transports.base import Status

from tests.helpers.fake_providers import TOKEN_ENV, settings_for

pytestmark = pytest.mark.live

EXTRA_VARS = {"mailgun": ["MAILGUN_DOMAIN"]}


def _settings_table(provider: str) -> dict:
    if provider == "postmark":
        return {"message_stream": os.environ.get("POSTMARK_STREAM", "broadcast")}
    if provider == "mailgun":
        return {"domain": os.environ["MAILGUN_DOMAIN"], "region": os.environ.get("MAILGUN_REGION", "us")}
    return {}


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_live_send_one_message(provider, tmp_path):
    needed = [TOKEN_ENV[provider], "DIGEST_LIVE_TO", "DIGEST_LIVE_FROM", *EXTRA_VARS.get(provider, [])]
    missing = [v for v in needed if not os.environ.get(v)]
    if missing:
        pytest.skip(f"live {provider} test needs {', '.join(missing)} in the environment")
    stamp = time.strftime("%Y%m%d%H%M%S")
    to = os.environ["DIGEST_LIVE_TO"]
    sender = os.environ["DIGEST_LIVE_FROM"]
    domain = sender.rsplit("@", 1)[-1].rstrip(">")
    msg = OutgoingMessage(
        recipient_id=1, to_email=to, to_name=os.environ.get("DIGEST_LIVE_NAME", ""), from_addr=sender,
        envelope_from=sender,
        reply_to=None, subject=f"[digest live test] {provider} {stamp}",
        html=f"<p>digest live test through {provider} at {stamp}.</p>",
        text=f"digest live test through {provider} at {stamp}.\n",
        message_id=f"<live-{provider}-{stamp}@{domain}>",
        headers=(("List-Unsubscribe", f"<mailto:unsubscribe@{domain}>"),))
    transport = transport_class(provider)(settings_for(tmp_path, provider, None, **_settings_table(provider)))
    with transport:
        (result,) = transport.send_batch([msg])
    assert result.status is Status.SENT, result
    assert result.provider_id
