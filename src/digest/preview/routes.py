"""HTTP routes of the preview server: pages, JSON for them, the email frame, images, live-reload events."""

from __future__ import annotations

import json
import re
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from digest.compose.render import GMAIL_CLIP_BYTES
from digest.errors import DigestError
from digest.preview import auth
from digest.preview.dark import MODES
from digest.preview.project import NotFound

if TYPE_CHECKING:  # pragma: no cover
    from digest.preview.server import PreviewServer

KEEPALIVE_SECONDS = 15.0  # a comment line on idle event streams, so a dead tab is noticed
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|css|js|svg|png)$")
_ASSET_TYPES = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
                "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml", "png": "image/png"}
# The email is authored content shown inside the preview's origin: no scripts, no plugins.
EMAIL_CSP = "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
# An issue's file (an image, maybe an SVG with a script in it) opened on its own: a sandbox (an
# origin of its own, no scripts) that loads nothing, so it can never read /api/subscribers.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def package_asset(name: str) -> bytes | None:
    """A file shipped in digest/preview/assets (None for names outside it)."""
    if not _ASSET_NAME.match(name):
        return None
    resource = resources.files("digest.preview").joinpath("assets", name)
    try:
        return resource.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class PreviewHandler(BaseHTTPRequestHandler):
    """One request. Each runs in its own thread (ThreadingHTTPServer)."""

    server: "PreviewServer"
    server_version = "digest-preview"

    # --- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Requests are not logged: the terminal shows changes and errors only."""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: dict, status: int = 200) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def _host_allowed(self) -> bool:
        # A web page elsewhere could point its own host name at 127.0.0.1 (DNS rebinding) and read
        # the preview — subscriber addresses included. Only our own names are answered.
        host = self.headers.get("Host")
        if host is None:
            return True
        port = self.server.server_address[1]
        return host.lower() in {f"127.0.0.1:{port}", f"localhost:{port}"}

    def _signed_in(self, url, query: dict[str, str]) -> bool:
        """True for a browser with the token's cookie; the token in the URL sets it (303 to the same
        address without it); anything else is refused."""
        server = self.server
        if "token" in query and auth.same(query["token"], server.token):
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain; charset=utf-8",
                       {"Location": auth.without_token(url), "Set-Cookie": auth.set_cookie(server.cookie_name, server.token)})
            return False
        if auth.same(auth.cookie_token(self.headers.get("Cookie"), server.cookie_name), server.token):
            return True
        self._text(HTTPStatus.FORBIDDEN, auth.DENIED)
        return False

    def do_HEAD(self) -> None:
        """Same as GET without the body."""
        self.do_GET()

    def do_GET(self) -> None:
        """Route a GET request."""
        if not self._host_allowed():
            self._text(HTTPStatus.MISDIRECTED_REQUEST, "This preview answers only on 127.0.0.1 and localhost.\n")
            return
        url = urlsplit(self.path)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if self._signed_in(url, query):
                self._route(segments, query)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (page reloaded mid-response)
        except Exception as exc:  # a bug: answer 500 and tell the terminal, keep serving
            self.server.report_error(f"{self.command} {self.path}: {exc!r}", traceback.format_exc())
            try:
                self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"digest preview: internal error: {exc!r}\n")
            except OSError:
                pass

    def _route(self, seg: list[str], query: dict[str, str]) -> None:
        for pattern, handler in ROUTES:
            params = match_route(pattern, seg)
            if params is not None:
                return handler(self, params, query)
        self._text(HTTPStatus.NOT_FOUND, "Not found.\n")

    def _issue_page(self, slug: str) -> None:
        if slug not in self.server.project.issue_files():
            return self._text(HTTPStatus.NOT_FOUND, f"No issue '{slug}'. The list of issues is at /\n")
        self._asset("issue.html")

    # --- routes -------------------------------------------------------------------------------

    def _asset(self, name: str) -> None:
        body = package_asset(name)
        if body is None:
            return self._text(HTTPStatus.NOT_FOUND, "Not found.\n")
        self._send(200, body, _ASSET_TYPES[name.rsplit(".", 1)[1]])

    def _subscribers(self, q: str) -> None:
        project = self.server.project
        result = project.subscribers.search(project.settings.path("subscribers"), q)
        self._json({"query": q, "matches": result.matches, "total_matches": result.total_matches,
                    "count": result.count, "skipped": result.skipped, "file": project.display(result.path),
                    "error": result.error})

    def _issue_data(self, slug: str, email: str | None) -> None:
        project = self.server.project
        base = {"slug": slug, "generation": project.generation, "ok": False}
        try:
            preview = project.frame_preview(slug, email)
        except NotFound as exc:
            return self._json({**base, "error": project.error_payload(exc)}, HTTPStatus.NOT_FOUND)
        except DigestError as exc:
            return self._json({**base, "error": project.error_payload(exc)})
        msg, issue, sub = preview.message, preview.rendered.issue, preview.subscriber
        html_bytes = len(msg.html.encode("utf-8"))
        to = f"{sub.name} <{msg.to_email}>" if sub.name else msg.to_email
        headers = [["From", msg.from_addr], ["Reply-To", msg.reply_to or "(none: replies go to From)"],
                   ["To", to], ["Subject", msg.subject], ["Preheader (inbox preview)", preview.preheader],
                   ["Return-Path", msg.envelope_from], ["Message-ID", msg.message_id],
                   *[[name, value] for name, value in msg.headers]]
        self._json({
            **base, "ok": True,
            "issue": {"title": issue.title, "subject": issue.subject, "date": issue.date.isoformat(),
                      "file": project.display(issue.path), "audience": list(issue.audience)},
            "subscriber": {"email": sub.email, "name": sub.name, "line": sub.line,
                           "in_audience": preview.in_audience, "tags": sorted(sub.tags)},
            "subject": msg.subject, "preheader": preview.preheader, "headers": headers,
            "text": msg.text, "html": msg.html, "html_bytes": html_bytes,
            "clip_bytes": GMAIL_CLIP_BYTES, "clipped": html_bytes > GMAIL_CLIP_BYTES,
            "warnings": list(preview.warnings), "checks": list(preview.checks),
        })

    def _email(self, slug: str, email: str | None, mode: str) -> None:
        project = self.server.project
        if mode not in MODES:
            return self._text(HTTPStatus.BAD_REQUEST, f"mode must be one of {', '.join(MODES)}.\n")
        try:
            page = project.frame_html(slug, email, mode)
        except DigestError as exc:
            status = HTTPStatus.NOT_FOUND if isinstance(exc, NotFound) else HTTPStatus.OK
            return self._text(status, f"{exc}\n")
        self._send(200, page.encode("utf-8"), "text/html; charset=utf-8", {"Content-Security-Policy": EMAIL_CSP})

    def _eml(self, slug: str, email: str | None) -> None:
        from digest.delivery.mime import build_mime

        project = self.server.project
        try:
            preview = project.frame_preview(slug, email)
            body = build_mime(preview.message)
        except DigestError as exc:
            return self._text(HTTPStatus.NOT_FOUND if isinstance(exc, NotFound) else HTTPStatus.CONFLICT, f"{exc}\n")
        self._send(200, body, "message/rfc822",
                   {"Content-Disposition": f'attachment; filename="{slug}.eml"'})

    def _file(self, slug: str, relative: str) -> None:
        found = self.server.project.asset_file(slug, relative)
        if found is None:
            return self._text(HTTPStatus.NOT_FOUND, "Not found (only the images the issue uses are served).\n")
        path, content_type = found
        self._send(200, path.read_bytes(), content_type, {"Content-Security-Policy": FILE_CSP})

    def _events(self) -> None:
        """Server-Sent Events: `change` with the new generation whenever a watched file changed."""
        project, server = self.server.project, self.server
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        since = project.generation
        # `retry`: reconnect after 1 s when the server restarts; `hello` lets a page that missed
        # changes while disconnected catch up.
        self.wfile.write(f"retry: 1000\nevent: hello\ndata: {since}\n\n".encode())
        self.wfile.flush()
        while not server.stopping:
            current = project.wait_for_change(since, KEEPALIVE_SECONDS)
            if server.stopping:
                break
            if current != since:
                since = current
                self.wfile.write(f"event: change\ndata: {current}\n\n".encode())
            else:
                self.wfile.write(b": keep-alive\n\n")
            self.wfile.flush()


def match_route(pattern: tuple[str, ...], seg: list[str]) -> dict[str, str] | None:
    """The parameters when the path's segments fit `pattern` ('<name>' takes one segment, '<rest>'
    the remaining ones, joined by '/'); None otherwise."""
    params: dict[str, str] = {}
    for i, token in enumerate(pattern):
        if token == "<rest>":
            if len(seg) <= i:
                return None
            params["rest"] = "/".join(seg[i:])
            return params
        if i >= len(seg):
            return None
        if token.startswith("<"):
            params[token[1:-1]] = seg[i]
        elif token != seg[i]:
            return None
    return params if len(seg) == len(pattern) else None


def _subscriber(query: dict[str, str]) -> str | None:
    return query.get("subscriber") or None


# The preview's URLs, in the order they are tried.
ROUTES: tuple[tuple[tuple[str, ...], Callable[[PreviewHandler, dict, dict], None]], ...] = (
    (("",), lambda h, p, q: h._asset("index.html")),
    (("index.html",), lambda h, p, q: h._asset("index.html")),
    (("assets", "<name>"), lambda h, p, q: h._asset(p["name"])),
    (("favicon.ico",), lambda h, p, q: h._asset("favicon.svg")),
    (("events",), lambda h, p, q: h._events()),
    (("api", "issues"), lambda h, p, q: h._json(h.server.project.listing())),
    (("api", "subscribers"), lambda h, p, q: h._subscribers(q.get("q", ""))),
    (("api", "issue", "<slug>"), lambda h, p, q: h._issue_data(p["slug"], _subscriber(q))),
    (("issue", "<slug>"), lambda h, p, q: h._issue_page(p["slug"])),
    (("issue", "<slug>", "email.html"), lambda h, p, q: h._email(p["slug"], _subscriber(q), q.get("mode", "light"))),
    (("issue", "<slug>", "message.eml"), lambda h, p, q: h._eml(p["slug"], _subscriber(q))),
    (("issue", "<slug>", "files", "<rest>"), lambda h, p, q: h._file(p["slug"], p["rest"])),
)
