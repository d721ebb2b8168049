"""A local stand-in for the providers' suppression APIs, with each one's documented pagination:
Postmark's suppressions dump (fromdate), SendGrid's suppression lists (limit/offset, start_time),
Mailgun's lists (paging.next URLs), Resend's contacts (limit/after, has_more)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeSuppressions:
    """Lists keyed by provider list name; `requests` records (path, query, headers) of every GET."""

    def __init__(self):
        self.postmark: list[dict] = []
        self.sendgrid: dict[str, list[dict]] = {"bounces": [], "spam_reports": [], "unsubscribes": []}
        self.mailgun: dict[str, list[dict]] = {"bounces": [], "complaints": [], "unsubscribes": []}
        self.resend: list[dict] = []
        self.requests: list[tuple[str, dict, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.requests.append((parts.path, query, dict(self.headers)))
                status, body = fake.answer(parts.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, q: dict) -> tuple[int, object]:
        if path.startswith("/message-streams/") and path.count("/") == 2:  # the transport's stream check
            return 200, {"ID": path.rsplit("/", 1)[1], "MessageStreamType": "Broadcasts",
                         "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Custom"}}
        if path.endswith("/suppressions/dump"):
            since = q.get("fromdate", "")
            return 200, {"Suppressions": [r for r in self.postmark if r["CreatedAt"][:10] >= since]}
        if path.startswith("/v3/suppression/"):
            rows = [r for r in self.sendgrid[path.rsplit("/", 1)[1]] if r["created"] >= int(q.get("start_time", 0))]
            rows.sort(key=lambda r: -r["created"])  # newest first
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", 500))
            return 200, rows[offset:offset + limit]
        if path.startswith("/v3/") and path.count("/") == 3:
            return 200, self._mailgun_page(path, q)
        if path == "/contacts" or path.startswith("/audiences/"):
            return 200, self._resend_page(q)
        return 404, {"message": "not found"}

    def _mailgun_page(self, path: str, q: dict) -> dict:
        rows = sorted(self.mailgun[path.rsplit("/", 1)[1]], key=lambda r: r["address"])
        limit = int(q.get("limit", 100))
        after = q.get("address") if q.get("page") == "next" else None
        if after:
            rows = [r for r in rows if r["address"] > after]
        page = rows[:limit]
        last = page[-1]["address"] if page else (after or "")
        base = f"{self.url}{path}"
        return {"items": page, "paging": {"first": f"{base}?limit={limit}",
                                          "next": f"{base}?page=next&address={last}&limit={limit}",
                                          "previous": f"{base}?page=previous&limit={limit}",
                                          "last": f"{base}?page=last&limit={limit}"}}

    def _resend_page(self, q: dict) -> dict:
        limit = int(q.get("limit", 20))
        ids = [r["id"] for r in self.resend]
        start = ids.index(q["after"]) + 1 if q.get("after") in ids else 0
        page = self.resend[start:start + limit]
        return {"object": "list", "has_more": start + limit < len(self.resend), "data": page}
