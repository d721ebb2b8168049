"""Behaviour shared by every HTTP API transport, run against each provider's local fake server."""

from __future__ import annotations

import email.utils
import socket

import pytest

from digest.errors import ConfigError, PermanentTransportError, TransientTransportError, TransportAuthError
from digest.transports import transport_class
from digest.transports.base import Status
from digest.transports.http import excerpt, wait_from_headers

from tests.helpers.fake_providers import FAKES, TOKEN_ENV, Reply, Scripted, outgoing, settings_for

PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]
BAD_REQUEST = {"postmark": 422, "sendgrid": 400, "mailgun": 400, "resend": 422}
NOW = 1_800_000_000.0  # injected clock


class Sleeps(list):
    """Injected sleep: records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(params=PROVIDERS)
def provider(request):
    return request.param


@pytest.fixture
def fake(provider, monkeypatch):
    server = FAKES[provider]().start()
    monkeypatch.setenv(TOKEN_ENV[provider], server.token)
    yield server
    server.stop()


def make(provider, fake, tmp_path, sleeps=None, **extra):
    settings = settings_for(tmp_path, provider, fake, **extra)
    return transport_class(provider)(settings, sleep=sleeps if sleeps is not None else Sleeps(),
                                     clock=lambda: NOW)


def addrs(messages):
    return [m.to_email for m in messages]


def test_full_success_reuses_one_connection(provider, fake, tmp_path):
    msgs = outgoing(3)
    with make(provider, fake, tmp_path) as t:
        first = t.send_batch(msgs[:2])
        second = t.send_batch(msgs[2:])
    results = first + second
    assert [r.recipient_id for r in results] == [1, 2, 3]
    assert all(r.status is Status.SENT and r.provider_id for r in results)
    assert {a: fake.accepted[a] for a in addrs(msgs)} == {a: 1 for a in addrs(msgs)}
    assert {a: fake.posted[a] for a in addrs(msgs)} == {a: 1 for a in addrs(msgs)}
    assert len({c.port for c in fake.calls}) == 1, "every call should reuse the same connection"
    assert all(c.headers["user-agent"].startswith("digest/") for c in fake.calls)
    assert t.needs_mime is False


def test_short_429_waits_retry_after_then_succeeds(provider, fake, tmp_path):
    fake.then(429, headers={"Retry-After": "2"})
    sleeps = Sleeps()
    msgs = outgoing(2)
    with make(provider, fake, tmp_path, sleeps) as t:
        results = t.send_batch(msgs) if t.max_batch > 1 else t.send_batch(msgs[:1]) + t.send_batch(msgs[1:])
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    assert sleeps == [2.0]
    assert fake.posted[msgs[0].to_email] == 2 and fake.accepted[msgs[0].to_email] == 1
    assert fake.accepted[msgs[1].to_email] == 1


def test_long_429_is_deferred_with_retry_after_and_not_slept(provider, fake, tmp_path):
    fake.then(429, headers={"Retry-After": "120"})
    sleeps = Sleeps()
    msgs = outgoing(1)
    with make(provider, fake, tmp_path, sleeps) as t:
        (first,) = t.send_batch(msgs)
        (again,) = t.send_batch(msgs)  # what the send loop does after waiting retry_after
    assert first.status is Status.DEFERRED and first.code == "429" and first.retry_after == 120.0
    assert "429" in first.reason
    assert sleeps == []
    assert again.status is Status.SENT
    assert fake.posted[msgs[0].to_email] == 2 and fake.accepted[msgs[0].to_email] == 1


def test_429_budget_exhausted_returns_deferred(provider, fake, tmp_path):
    fake.then(429, headers={"Retry-After": "1"})
    fake.then(429, headers={"Retry-After": "1"})
    sleeps = Sleeps()
    with make(provider, fake, tmp_path, sleeps, rate_limit_retries=1) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.DEFERRED and result.retry_after == 1.0
    assert sleeps == [1.0]
    assert len(fake.calls) == 2


def test_retry_after_as_http_date(provider, fake, tmp_path):
    fake.then(429, headers={"Retry-After": email.utils.formatdate(NOW + 90, usegmt=True)})
    with make(provider, fake, tmp_path) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.DEFERRED and result.retry_after == pytest.approx(90.0)


def test_500_then_success_sends_each_recipient_once(provider, fake, tmp_path):
    fake.then(500)
    msgs = outgoing(1)
    with make(provider, fake, tmp_path) as t:
        (first,) = t.send_batch(msgs)
        (second,) = t.send_batch(msgs)
    assert first.status is Status.DEFERRED and first.code == "500" and "HTTP 500" in first.reason
    assert second.status is Status.SENT
    assert fake.posted[msgs[0].to_email] == 2 and fake.accepted[msgs[0].to_email] == 1


def test_timeout_is_deferred(provider, fake, tmp_path):
    fake.hang(1.5)
    with make(provider, fake, tmp_path, timeout=0.3) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.DEFERRED and result.code == "timeout"
    assert "0.3 s" in result.reason


def test_wrong_token_is_auth_error_naming_the_variable(provider, fake, tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV[provider], "wrong-token")
    with pytest.raises(TransportAuthError) as info:  # Postmark's open() already asks about the stream
        with make(provider, fake, tmp_path) as t:
            t.send_batch(outgoing(2))
    text = str(info.value)
    assert f"${TOKEN_ENV[provider]}" in text and "HTTP 40" in text
    assert fake.accepted == {}


def test_missing_token_is_config_error_naming_the_variable(provider, tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV[provider], raising=False)
    t = transport_class(provider)(settings_for(tmp_path, provider, None, base_url="http://127.0.0.1:9",
                                               **({"domain": "mg.example.org"} if provider == "mailgun" else {})))
    with pytest.raises(ConfigError, match=f"environment variable {TOKEN_ENV[provider]} is not set"):
        t.open()


def test_unreachable_server_raises_transient(provider, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(TOKEN_ENV[provider], "t")
    extra = {"domain": "mg.example.org"} if provider == "mailgun" else {}
    t = transport_class(provider)(settings_for(tmp_path, provider, None, base_url=f"http://127.0.0.1:{port}", **extra))
    with pytest.raises(TransientTransportError, match=f"connection to (POST|GET) http://127.0.0.1:{port}/.* failed"):
        with t:  # Postmark's open() already asks about the stream
            t.send_batch(outgoing(1))


def test_batch_larger_than_limit_is_split(provider, fake, tmp_path):
    cls = transport_class(provider)
    n = cls.max_batch * 2 + 1 if cls.max_batch > 1 else 3
    msgs = outgoing(n)
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs)
    assert [r.recipient_id for r in results] == [m.recipient_id for m in msgs]
    assert all(r.status is Status.SENT for r in results)
    assert len(fake.calls) == (3 if cls.max_batch > 1 else n)
    assert max(len(c.recipients) for c in fake.calls) <= cls.max_batch
    assert sum(fake.accepted.values()) == n


def test_rest_of_batch_deferred_after_a_failed_call(provider, fake, tmp_path):
    cls = transport_class(provider)
    size = cls.max_batch
    msgs = outgoing(size * 3)
    fake.then(503)
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs)
    assert all(r.status is Status.DEFERRED for r in results)
    assert len(fake.calls) == 1, "after a 5xx the rest of the batch must not be posted"
    assert results[-1].reason.startswith("not attempted")


def test_accepted_part_kept_when_a_later_call_fails(provider, fake, tmp_path):
    size = transport_class(provider).max_batch
    msgs = outgoing(size * 2)
    fake.script.extend([Scripted(None), Scripted(Reply(500, fake.error_body(500)))])  # call 2 fails
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs)
    assert [r.status for r in results] == [Status.SENT] * size + [Status.DEFERRED] * size
    assert all(fake.accepted[m.to_email] == 1 for m in msgs[:size])
    assert all(fake.accepted[m.to_email] == 0 for m in msgs[size:])


def test_a_refusal_after_accepted_calls_keeps_their_results_and_defers_the_rest(provider, fake, tmp_path):
    size = transport_class(provider).max_batch
    msgs = outgoing(size * 2)
    status = BAD_REQUEST[provider]
    fake.script.extend([Scripted(None), Scripted(Reply(status, fake.error_body(status)))])  # call 2 refused
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs)  # raising here would lose the accepted call's results
    assert [r.status for r in results] == [Status.SENT] * size + [Status.DEFERRED] * size
    assert results[-1].code == "not_attempted" and f"HTTP {status}" in results[-1].reason
    assert all(fake.accepted[m.to_email] == 1 for m in msgs[:size])


def test_dropped_connection_after_accepted_calls_defers_the_rest(provider, fake, tmp_path):
    size = transport_class(provider).max_batch
    msgs = outgoing(size * 2)
    fake.script.extend([Scripted(None), Scripted(None, drop=True)])
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs)
    assert [r.status for r in results] == [Status.SENT] * size + [Status.DEFERRED] * size
    assert results[-1].code == "connection"


def test_dropped_connection_on_first_call_raises_transient(provider, fake, tmp_path):
    fake.drop()
    with make(provider, fake, tmp_path) as t:
        with pytest.raises(TransientTransportError, match="connection to POST .* failed"):
            t.send_batch(outgoing(1))
        (again,) = t.send_batch(outgoing(1))  # the session recovers on a new connection
    assert again.status is Status.SENT


def test_invalid_recipient_fails_with_suppress_others_sent(provider, fake, tmp_path):
    msgs = outgoing(3)
    fake.reject(msgs[1].to_email, "invalid")
    with make(provider, fake, tmp_path) as t:
        results = t.send_batch(msgs) if t.max_batch > 1 else [r for m in msgs for r in t.send_batch([m])]
    assert [r.status for r in results] == [Status.SENT, Status.FAILED, Status.SENT]
    assert results[1].suppress is True and results[1].reason
    assert fake.accepted[msgs[1].to_email] == 0
    assert fake.accepted[msgs[0].to_email] == fake.accepted[msgs[2].to_email] == 1


def test_whole_request_refusal_keeps_status_and_truncated_body(provider, fake, tmp_path):
    status = BAD_REQUEST[provider]
    fake.then(status, body={"message": "E" * 3000, "ErrorCode": 402, "name": "validation_error"})
    with make(provider, fake, tmp_path) as t:
        with pytest.raises(PermanentTransportError) as info:
            t.send_batch(outgoing(1))
    text = str(info.value)
    assert f"HTTP {status}" in text and "more characters]" in text
    assert len(text) < 1200


def test_bad_settings_are_config_errors(provider, tmp_path):
    extra = {"domain": "mg.example.org"} if provider == "mailgun" else {}
    with pytest.raises(ConfigError, match=rf"\[{provider}\] base_url = 'ftp://x': expected an http\(s\) URL"):
        transport_class(provider)(settings_for(tmp_path, provider, None, base_url="ftp://x", **extra))
    with pytest.raises(ConfigError, match=rf"\[{provider}\]: unknown setting 'tokn_env'. Did you mean 'token_env'"):
        transport_class(provider)(settings_for(tmp_path, provider, None, tokn_env="X", **extra))


# -- pure helpers ---------------------------------------------------------------------------------

def test_wait_from_headers_forms():
    assert wait_from_headers({"Retry-After": "3"}, NOW) == 3.0
    assert wait_from_headers({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, NOW) == pytest.approx(30)
    assert wait_from_headers({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, NOW) == 0.0
    assert wait_from_headers({"ratelimit-reset": "7"}, NOW, "ratelimit-reset", "delta") == 7.0
    assert wait_from_headers({"X-RateLimit-Reset": str(int(NOW + 45))}, NOW, "X-RateLimit-Reset", "epoch") == 45.0
    assert wait_from_headers({"X-RateLimit-Reset": str(int((NOW + 5) * 1000))}, NOW,
                             "X-RateLimit-Reset", "epoch") == pytest.approx(5.0)
    assert wait_from_headers({}, NOW, "X-RateLimit-Reset", "epoch") is None
    assert wait_from_headers({"Retry-After": "soon"}, NOW) is None


def test_provider_reset_header_used_when_no_retry_after(tmp_path, monkeypatch):
    for provider, headers, expected in [
        ("resend", {"ratelimit-reset": "7"}, 7.0),
        ("sendgrid", {"X-RateLimit-Reset": str(int(NOW + 30))}, 30.0),
    ]:
        with FAKES[provider]() as fake:
            monkeypatch.setenv(TOKEN_ENV[provider], fake.token)
            fake.then(429, headers=headers)
            with make(provider, fake, tmp_path, max_inline_wait=0.0) as t:
                (result,) = t.send_batch(outgoing(1))
            assert result.status is Status.DEFERRED and result.retry_after == expected, provider


def test_excerpt_is_one_line_and_bounded():
    assert excerpt("a\n  b") == "a b"
    assert excerpt("") == "(empty body)"
    assert excerpt("x" * 600, 500).endswith("… [100 more characters]")
