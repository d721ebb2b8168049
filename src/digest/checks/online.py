"""`digest check --online`: do the issue's links answer? HEAD first, GET when a server will not HEAD."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from digest.checks.findings import CheckReport

TIMEOUT = 10.0   # seconds per request
WORKERS = 8      # requests at once: polite to the sites, quick for an issue's few dozen links


def link_status(url: str, session, timeout: float = TIMEOUT) -> str | None:
    """None when the link answers 2xx/3xx; otherwise what went wrong."""
    import requests

    try:
        answer = session.head(url, allow_redirects=True, timeout=timeout)
        if answer.status_code in (403, 405, 501) or answer.status_code >= 500:
            # Many servers refuse HEAD (or only HEAD): ask the way a browser does.
            answer = session.get(url, allow_redirects=True, timeout=timeout, stream=True)
            answer.close()
    except requests.RequestException as exc:
        return f"did not answer ({type(exc).__name__}: {str(exc)[:80]})"
    if answer.status_code >= 400:
        return f"answered {answer.status_code} {answer.reason or ''}".rstrip()
    return None


def check_links_online(report: CheckReport, urls: Sequence[str], *, timeout: float = TIMEOUT,
                       workers: int = WORKERS) -> None:
    """Try every link (bounded: `workers` at once, `timeout` each) and record the ones that fail."""
    import requests

    from digest.transports.http import user_agent

    with requests.Session() as session:
        session.headers["User-Agent"] = user_agent()
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda url: (url, link_status(url, session, timeout)), urls))
    report.links_checked = len(urls)
    for url, problem in results:
        if problem:
            report.add("link-broken", f"{url} {problem}.", "", "fix or remove the link (or try again later)")
