"""Who the preview answers: a browser with its token — once in the printed URL, then as a cookie.

As notebook servers do: any local user can reach 127.0.0.1, and the preview shows the subscriber
list. The cookie is HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it).
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import SplitResult, parse_qsl, urlencode

DENIED = ("This preview answers only the browser that opened the address `digest preview` printed "
          "(…/?token=…). Open that address again; restarting `digest preview` prints it too.\n")


def same(given: str | None, token: str) -> bool:
    """Whether `given` is the token (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("ascii"))


def cookie_token(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, or None."""
    if not header:
        return None
    try:
        morsel = SimpleCookie(header).get(name)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


def set_cookie(name: str, token: str) -> str:
    """The Set-Cookie value that keeps the token in this browser for the session."""
    return f"{name}={token}; Path=/; HttpOnly; SameSite=Strict"


def without_token(url: SplitResult) -> str:
    """path?query of `url` with the token taken out (so it stays out of history and bookmarks)."""
    rest = urlencode([(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "token"])
    return (url.path or "/") + (f"?{rest}" if rest else "")
