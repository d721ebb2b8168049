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

import email.utils
import json
import re
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from digest import __version__
from digest.config import load_section, secret, setting
from digest.errors import (
    ConfigError,
    PermanentTransportError,
    TransientTransportError,
    TransportAuthError,
)
from digest.outgoing import OutgoingMessage
from digest.transports.base import SendResult, Status, Transport

if typing.TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

BODY_EXCERPT = 500  # characters of a provider's answer kept in error messages and ledger reasons


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


@dataclass(frozen=True)
class APIRequest:
    """One HTTP call, fully described: what a provider's pure builder returns."""

    method: str
    url: str
    messages: tuple[OutgoingMessage, ...]   # the messages this call carries, in result order
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Any = None
    files: Any = None                        # requests 'files' form: multipart/form-data fields
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class APIResponse:
    """What came back, detached from `requests` so the readers stay pure and testable."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.text)

    def excerpt(self, limit: int = BODY_EXCERPT) -> str:
        """The body on one line, truncated: safe to put in an error message or the ledger."""
        return excerpt(self.text, limit)


def excerpt(text: str, limit: int = BODY_EXCERPT) -> str:
    """`text` on one line, cut to `limit` characters with a marker saying how much was cut."""
    one_line = re.sub(r"\s+", " ", text or "").strip()
    if len(one_line) <= limit:
        return one_line or "(empty body)"
    return f"{one_line[:limit]}… [{len(one_line) - limit} more characters]"


def display_address(name: str, addr: str) -> str:
    """'Name <addr>' for an API that takes RFC 5322-style strings; quotes names with specials."""
    if not name:
        return addr
    if re.fullmatch(r"[\w !#$%&'*+\-/=?^`{|}~]+", name):  # atext and spaces (Unicode word chars ok)
        return f"{name} <{addr}>"
    return f'"{email.utils.quote(name)}" <{addr}>'


def split_address(value: str) -> tuple[str, str]:
    """(display name, bare address) of a header value such as 'News <news@example.org>'."""
    name, addr = email.utils.parseaddr(value)
    return name, addr or value.strip()


def message_headers(msg: OutgoingMessage) -> list[tuple[str, str]]:
    """The message's extra headers plus Message-ID (unless already there), in a stable order."""
    headers = list(msg.headers)
    if msg.message_id and not any(k.lower() == "message-id" for k, _ in headers):
        headers.append(("Message-ID", msg.message_id))
    return headers


def results_for(messages: Sequence[OutgoingMessage], status: Status, *, code: str | None = None,
                reason: str = "", retry_after: float | None = None) -> list[SendResult]:
    """The same outcome for every message of a call (whole-request answers)."""
    return [SendResult(m.recipient_id, status, code=code, reason=reason, retry_after=retry_after)
            for m in messages]


def wait_from_headers(headers: Mapping[str, str], now: float,
                      reset_header: str | None = None, reset_kind: str = "delta") -> float | None:
    """Seconds to wait before retrying, from Retry-After (seconds or HTTP-date) or a reset header.

    `reset_kind` says how the provider writes its reset header: "delta" (seconds from now, e.g.
    Resend's ratelimit-reset) or "epoch" (a Unix time, e.g. SendGrid's X-RateLimit-Reset; values
    that only make sense as milliseconds are read as milliseconds). None when nothing usable.
    """
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - now)
    if reset_header and headers.get(reset_header):
        try:
            number = float(headers[reset_header].strip())
        except ValueError:
            return None
        if reset_kind == "epoch":
            if number > 1e11:  # milliseconds since the epoch
                number /= 1000.0
            return max(0.0, number - now)
        return max(0.0, number)
    return None


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
        results: list[SendResult] = []
        step = max(1, self.max_batch)
        chunks = [list(messages[i:i + step]) for i in range(0, len(messages), step)]
        for index, chunk in enumerate(chunks):
            try:
                chunk_results = self._post(self.build_request(chunk))
            except TransientTransportError as exc:
                if not results:
                    raise  # nothing attempted yet: the whole batch is deferred by the send loop
                # Earlier calls were accepted: keep their results, defer the rest.
                rest = [m for c in chunks[index:] for m in c]
                return results + results_for(rest, Status.DEFERRED, code="connection",
                                             reason=exc.message, retry_after=exc.retry_after)
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
                raise TransportAuthError(
                    f"{self.label} refused the API token from ${self.config.token_env} "
                    f"(HTTP {status} from {self._where(request)}): {response.excerpt()}",
                    f"check that {self.config.token_env} holds a valid {self.label} token with "
                    f"permission to send" + (" and that the sender domain is verified" if status == 403 else ""))
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


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
