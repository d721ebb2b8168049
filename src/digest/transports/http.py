"""Shared machinery for mail-service HTTP API transports: session, timeouts, errors, rate limits.

A provider module supplies three things and nothing else:

* a settings dataclass (subclass of `HTTPSettings`) with its own defaults,
* a PURE `build_request(messages, settings, token) -> APIRequest` (no network, unit-testable),
* a PURE `read_results(request, response) -> list[SendResult]` for the answers the shared code
  does not handle itself (2xx and the provider's own 4xx).

This module does the posting: one `requests.Session` per run (connection reuse), a (connect, read)
timeout on every call, a User-Agent, 401/403 → TransportAuthError naming the token's environment
variable, 429 → wait (briefly, within a budget) or DEFERRED with `retry_after`, 5xx and read
timeouts → DEFERRED, a connection that cannot be made at all → TransientTransportError.
"""

from __future__ import annotations

import ipaddress
import time
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from digest import __version__
from digest.addresses import idna_domain
from digest.config import load_section, secret
from digest.errors import (
    ConfigError,
    PermanentTransportError,
    TransientTransportError,
    TransportAuthError,
    TransportError,
)
from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.text import header_safe
from digest.transports.api_call import (  # re-exported: providers import the API-call parts from here
    BODY_EXCERPT,
    APIRequest,
    APIResponse,
    excerpt,
    results_for,
    wait_from_headers,
)
from digest.transports.api_fields import (  # re-exported: the one display-address formatter and its kin
    ascii_domain,
    display_address,
    message_headers,
    sender_address,
    split_address,
)
from digest.transports.base import SendResult, Status, Transport

__all__ = ["BODY_EXCERPT", "APIRequest", "APIResponse", "HTTPSettings", "HTTPTransport", "ascii_domain",
           "display_address", "excerpt", "message_headers", "results_for", "sender_address", "split_address",
           "user_agent", "wait_from_headers"]

if typing.TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


@dataclass
class HTTPSettings:
    """Settings every HTTP API transport has; each provider subclasses it with its own defaults."""

    token_env: str = setting("", "Name of the environment variable holding the API token / key.")
    base_url: str = setting("", "Where calls go: the provider's public API; change it for a regional endpoint, "
                            "a proxy or a local test server.")
    timeout: float = setting(60.0, "Seconds to wait for the provider's answer to one call (read timeout).")
    connect_timeout: float = setting(10.0, "Seconds to establish the TCP/TLS connection.")
    rate_limit_retries: int = setting(1, "How often a rate-limited call (HTTP 429) whose wait is short is retried "
                                      "at once, inside the transport.")
    max_inline_wait: float = setting(5.0, "Longest wait (seconds) the transport sleeps for such a retry; longer "
                                     "waits are handed to the send loop.")


def _project_url() -> str | None:
    """The project's home page from installed package metadata, if the package declares one."""
    try:
        import importlib.metadata as md
        meta = md.metadata("digest-newsletter")
    except Exception:  # not installed as a distribution (e.g. running from a source tree)
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if url.strip():
            return url.strip()
    return meta.get("Home-page") or None


def user_agent() -> str:
    """'digest/<version> (+<project url>)' — the URL part only when the package declares one."""
    url = _project_url()
    return f"digest/{__version__} (+{url})" if url else f"digest/{__version__}"


class HTTPTransport(Transport):
    """Base class of the mail-service API transports. Subclasses set the class attributes and
    implement `build_request` and `read_results` (both pure)."""

    needs_mime: ClassVar[bool] = False     # APIs take subject/html/text/headers, not MIME bytes
    # One session per transport instance; the send loop runs N instances in N worker threads for
    # --connections N, which matters most for the one-message-per-call providers.
    supports_connections: ClassVar[bool] = True
    settings_class: ClassVar[type] = HTTPSettings
    # (messages, settings, token) -> APIRequest: each provider's pure request builder
    request_builder: ClassVar[Callable[..., APIRequest]]
    label: ClassVar[str] = ""              # provider name in messages: "Postmark"
    accepts_eai: ClassVar[bool] = False    # takes addresses with a non-ASCII local part (RFC 6531)
    reset_header: ClassVar[str | None] = None
    reset_kind: ClassVar[str] = "delta"

    def __init__(self, settings: "Settings", *, connections: int = 1,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        super().__init__(settings, connections=connections)
        self.config = self.load_config(settings)
        self._sleep = sleep    # injectable: tests record waits instead of sleeping
        self._clock = clock    # injectable: HTTP-date / epoch reset headers are read against it
        self._session: requests.Session | None = None
        self._token: str | None = None
        self.calls = 0         # HTTP calls made (benchmarks report calls/s)

    # -- settings -------------------------------------------------------------------------------

    @classmethod
    def load_config(cls, settings: "Settings") -> Any:
        """This provider's validated settings dataclass from digest.toml [<name>]."""
        where = settings.where(cls.name)
        section = cls.prepare_section(settings.transport_section(cls.name), where)
        cfg = load_section(cls.settings_class, section, where)
        if cfg.timeout <= 0 or cfg.connect_timeout <= 0:
            raise ConfigError(f"{where}: timeout and connect_timeout must be > 0 seconds.")
        if cfg.rate_limit_retries < 0 or cfg.max_inline_wait < 0:
            raise ConfigError(f"{where}: rate_limit_retries and max_inline_wait must be ≥ 0.")
        parts = urlsplit(cfg.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where} base_url = {cfg.base_url!r}: expected an http(s) URL.",
                              "leave base_url out to use the provider's public API")
        if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            raise ConfigError(f"{where} base_url = {cfg.base_url!r}: plain http would send the API token "
                              "unencrypted.",
                              "use https:// (http:// is accepted only for a server on this machine: "
                              "localhost, 127.0.0.1, ::1)")
        cfg.base_url = cfg.base_url.rstrip("/")
        cls.check_config(cfg, where)
        return cfg

    @classmethod
    def prepare_section(cls, section: dict[str, Any], where: str) -> dict[str, Any]:
        """Hook: derive settings from others before validation (e.g. Mailgun region → base_url)."""
        return section

    @classmethod
    def check_config(cls, cfg: Any, where: str) -> None:
        """Hook: provider-specific checks after validation (raise ConfigError)."""

    # -- provider hooks (pure) ------------------------------------------------------------------

    def build_request(self, messages: Sequence[OutgoingMessage]) -> APIRequest:
        """The one API call that sends `messages` (at most max_batch of them): the provider's pure
        module-level build_request (its `request_builder`) with this transport's settings and token."""
        return type(self).request_builder(messages, self.config, self.token)

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:  # pragma: no cover
        """Per-message results from an answer that is not 401/403/429/5xx."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------

    def describe(self) -> str:
        """Provider and endpoint base, e.g. 'postmark https://api.postmarkapp.com'."""
        return f"{self.name} {self.config.base_url}"

    def open(self) -> None:
        """Read the token from its environment variable and open the HTTP session."""
        if self._session is not None:
            return
        self._token = secret(self.config.token_env, purpose=f"{self.label} API token, "
                             f"named by token_env in {self.settings.where(self.name)}")
        session = requests.Session()
        # urllib3 must not retry on its own: a silent re-POST could send a batch twice.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, self.connections), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = user_agent()
        session.trust_env = True
        self._session = session

    def close(self) -> None:
        """Close the session and its pooled connections. Safe to call more than once."""
        if self._session is not None:
            self._session.close()
            self._session = None

    @property
    def token(self) -> str:
        """The API token (open() reads it)."""
        if self._token is None:
            self.open()
        return self._token  # type: ignore[return-value]

    # -- sending --------------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send in calls of at most max_batch messages; one result per message, same order.

        After a call that is deferred as a whole (429 beyond the wait budget, 5xx, timeout), the
        rest of the batch is deferred without being posted: hammering a struggling provider helps
        nobody, and the send loop retries exactly the deferred recipients later.
        """
        if self._session is None:
            self.open()
        # Readers this provider cannot take (cannot_deliver) fail alone, before any call, and are
        # retryable: the address is not at fault, another transport may deliver it.
        refusals = [self.cannot_deliver(m) for m in messages]
        sendable = [m for m, why in zip(messages, refusals) if why is None]
        sent = iter(self._send_calls(sendable) if sendable else [])
        return [next(sent) if why is None else
                SendResult(m.recipient_id, Status.FAILED, code=why[0], reason=why[1], retryable=True)
                for m, why in zip(messages, refusals)]

    def split(self, messages: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        """Hook: the calls a batch is sent in (default: at most max_batch messages each)."""
        step = max(1, self.max_batch)
        return [list(messages[i:i + step]) for i in range(0, len(messages), step)]

    def cannot_deliver(self, msg: OutgoingMessage) -> tuple[str, str] | None:
        """Hook: (code, reason) when this provider cannot take this reader's message, else None. By
        default a non-ASCII local part is refused unless the provider takes them (accepts_eai), and
        so is a domain without an ASCII (IDNA) form."""
        local, _, domain = header_safe(msg.to_email).rpartition("@")
        if not local.isascii() and not self.accepts_eai:
            return "unsupported_address", (
                f"{self.label} cannot deliver to {msg.to_email}: its API does not take addresses with a "
                "non-ASCII local part (RFC 6531); the address may be fine, send to it through smtp")
        if not domain.isascii() and idna_domain(domain) is None:
            return "unsupported_address", f"{self.label} cannot deliver to {msg.to_email}: its domain has no ASCII (IDNA) form"
        return None

    def _send_calls(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        chunks = self.split(messages)
        for index, chunk in enumerate(chunks):
            try:
                chunk_results = self._post(self.build_request(chunk))
            except TransportError as exc:
                if not results:
                    raise  # nothing attempted yet: the send loop handles the whole batch
                # Earlier calls were accepted: keep their results, defer the rest; a refusal that
                # stands will meet their retry first and be raised then, with nothing accepted.
                rest = [m for c in chunks[index:] for m in c]
                transient = isinstance(exc, TransientTransportError)
                return results + results_for(
                    rest, Status.DEFERRED, code="connection" if transient else "not_attempted",
                    reason=exc.message if transient else f"not attempted: {exc.message}",
                    retry_after=getattr(exc, "retry_after", None))
            results.extend(chunk_results)
            deferred = [r for r in chunk_results if r.status is Status.DEFERRED]
            if deferred and len(deferred) == len(chunk_results) and index + 1 < len(chunks):
                first = deferred[0]
                rest = [m for c in chunks[index + 1:] for m in c]
                results.extend(results_for(rest, Status.DEFERRED, code=first.code,
                                           reason=f"not attempted: {first.reason}",
                                           retry_after=first.retry_after))
                break
        return results

    def _post(self, request: APIRequest) -> list[SendResult]:
        """Make one call (plus short in-transport waits on 429) and map the answer."""
        assert self._session is not None
        attempts = self.config.rate_limit_retries + 1
        for attempt in range(attempts):
            try:
                raw = self._session.request(
                    request.method, request.url, headers=dict(request.headers), json=request.json,
                    data=request.data, files=request.files, auth=request.auth,
                    timeout=(self.config.connect_timeout, self.config.timeout),
                    allow_redirects=False)
                self.calls += 1
            except requests.exceptions.ReadTimeout:
                self.calls += 1
                # The provider may or may not have accepted it: only the send loop's ledger and
                # (for Resend) the idempotency key can make the retry safe. Defer, do not guess.
                return results_for(request.messages, Status.DEFERRED, code="timeout",
                                   reason=f"{self.label}: no answer from {self._where(request)} "
                                          f"within {self.config.timeout:g} s; outcome unknown")
            except requests.exceptions.RequestException as exc:  # refused, reset, TLS, broken body
                raise TransientTransportError(
                    f"{self.label}: connection to {self._where(request)} failed: {_short(exc)}",
                    "check the network and [%s] base_url; the batch will be retried" % self.name)
            response = APIResponse(raw.status_code, CaseInsensitiveDict(raw.headers), raw.text)
            status = response.status
            if status in (401, 403):
                raise self._auth_error(self._where(request), response)
            if status == 429 and (refused := self.refused_429(request, response)) is not None:
                raise refused
            if status == 429:
                wait = wait_from_headers(response.headers, self._clock(),
                                         self.reset_header, self.reset_kind)
                if (attempt + 1 < attempts and wait is not None
                        and wait <= self.config.max_inline_wait):
                    self._sleep(wait)
                    continue
                return results_for(request.messages, Status.DEFERRED, code="429",
                                   reason=f"{self.label} rate limit (HTTP 429): {response.excerpt(200)}",
                                   retry_after=wait)
            if status >= 500:
                return results_for(request.messages, Status.DEFERRED, code=str(status),
                                   reason=f"{self.label} server error (HTTP {status}): "
                                          f"{response.excerpt(200)}",
                                   retry_after=wait_from_headers(response.headers, self._clock()))
            return self.read_results(request, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def refused_429(self, request: APIRequest, response: APIResponse) -> Exception | None:
        """Hook: an error to raise for a 429 that waiting will not fix soon (e.g. a used-up quota)."""
        return None

    def api_get(self, path: str, headers: Mapping[str, str]) -> APIResponse:
        """One GET to the provider's management API (e.g. Postmark's Streams API), with the same
        timeouts; refused tokens, rate limits, server errors and lost connections raise."""
        if self._session is None:
            self.open()
        assert self._session is not None
        url = f"{self.config.base_url}{path}"
        where = f"GET {url.split('?')[0]}"
        try:
            raw = self._session.get(url, headers=dict(headers), allow_redirects=False,
                                    timeout=(self.config.connect_timeout, self.config.timeout))
        except requests.exceptions.RequestException as exc:
            raise TransientTransportError(f"{self.label}: connection to {where} failed: {_short(exc)}",
                                          "check the network and [%s] base_url" % self.name)
        self.calls += 1
        response = APIResponse(raw.status_code, CaseInsensitiveDict(raw.headers), raw.text)
        if response.status in (401, 403):
            raise self._auth_error(where, response)
        if response.status == 429 or response.status >= 500:
            raise TransientTransportError(
                f"{self.label} answered HTTP {response.status} from {where}: {response.excerpt(200)}",
                "try again in a few minutes", retry_after=wait_from_headers(response.headers, self._clock()))
        return response

    def _auth_error(self, where: str, response: APIResponse) -> TransportAuthError:
        return TransportAuthError(
            f"{self.label} refused the API token from ${self.config.token_env} "
            f"(HTTP {response.status} from {where}): {response.excerpt()}",
            f"check that {self.config.token_env} holds a valid {self.label} token with permission to "
            f"send" + (" and that the sender domain is verified" if response.status == 403 else ""))

    # -- helpers for providers ------------------------------------------------------------------

    def _where(self, request: APIRequest) -> str:
        parts = urlsplit(request.url)
        return f"{request.method} {parts.scheme}://{parts.netloc}{parts.path}"

    def permanent(self, request: APIRequest, response: APIResponse, hint: str) -> PermanentTransportError:
        """A whole-request refusal that retrying will not fix, keeping status and body."""
        return PermanentTransportError(
            f"{self.label} refused the request (HTTP {response.status} from "
            f"{self._where(request)}): {response.excerpt()}", hint)

    def unreadable(self, request: APIRequest, response: APIResponse, why: str) -> PermanentTransportError:
        """A 2xx answer we cannot map to recipients: stop rather than risk sending twice."""
        return PermanentTransportError(
            f"{self.label} answered HTTP {response.status} from {self._where(request)} but {why}: "
            f"{response.excerpt()}",
            "the run stops so that nobody is sent twice; check the provider's activity log "
            "before resuming")


def _is_loopback(host: str) -> bool:
    """Whether `host` names this machine (where plain http cannot be read on the way)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
