"""The WSGI application behind `digest serve`: a route table filled by one module per job.

Each module under digest/web/ that serves URLs lists them as `ROUTES` (werkzeug Rules whose endpoint
names a function of that module: `handler(app, request, **url_args) -> Response`). The app knows
nothing else about them, so unsubscribe pages, the archive and provider webhooks live and are tested
apart. It is a plain WSGI callable: `digest serve` runs it under waitress, and any production WSGI
server (gunicorn, uWSGI, mod_wsgi) can run `digest.web.app:application` with DIGEST_CONFIG set.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from typing import TYPE_CHECKING, Callable

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

# The modules that serve URLs; each has ROUTES = [Rule(..., endpoint="function_name"), ...].
ROUTE_MODULES: tuple[str, ...] = ("digest.web.webhooks", "digest.web.unsubscribe", "digest.web.archive")

log = logging.getLogger("digest.web")


class WebApp:
    """Settings plus the URL map of every route module; a WSGI callable."""

    def __init__(self, settings: "Settings", modules: tuple[str, ...] = ROUTE_MODULES):
        self.settings = settings
        self.handlers: dict[str, Callable[..., Response]] = {}
        rules: list[Rule] = []
        for name in modules:
            module = importlib.import_module(name)
            for rule in module.ROUTES:
                endpoint = f"{name}:{rule.endpoint}"
                self.handlers[endpoint] = getattr(module, rule.endpoint)
                rules.append(rule.empty())
                rules[-1].endpoint = endpoint
        # strict_slashes: /unsubscribe/ is not /unsubscribe — and never a redirect (RFC 8058 POSTs).
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:  # a bug: a plain 500, the traceback to the log, never to the reader
            log.error("%s %s failed:\n%s", request.method, request.path, traceback.format_exc())
            response = text_response("Something went wrong on our side. Please try again later.", 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Find the route and run its handler; 404/405 as plain text pages."""
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except (NotFound, MethodNotAllowed) as exc:
            return text_response(exc.description or exc.name, exc.code or 404,
                                 headers=exc.get_headers()[1:] if isinstance(exc, MethodNotAllowed) else None)
        except HTTPException as exc:
            return text_response(exc.name, exc.code or 400)
        return self.handlers[endpoint](self, request, **args)


def text_response(text: str, status: int = 200, *, headers=None) -> Response:
    """A plain-text answer (errors, machine endpoints)."""
    response = Response(text + ("\n" if not text.endswith("\n") else ""), status=status,
                        content_type="text/plain; charset=utf-8")
    for name, value in headers or ():
        response.headers[name] = value
    return response


def make_app(settings: "Settings | None" = None) -> WebApp:
    """The application for a project's settings (default: DIGEST_CONFIG or the nearest digest.toml)."""
    from digest.config import load_settings

    return WebApp(settings or load_settings())


def application(environ: dict, start_response):  # pragma: no cover - for external WSGI servers
    """`digest.web.app:application` for gunicorn and friends: settings from DIGEST_CONFIG, loaded once."""
    global _APP
    if _APP is None:
        _APP = make_app()
    return _APP(environ, start_response)


_APP: WebApp | None = None
