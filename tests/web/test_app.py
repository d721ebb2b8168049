"""The WSGI app's frame: route modules, 404 and 405 as plain pages, a failing handler is a bare 500."""

from __future__ import annotations

from werkzeug.test import Client

from digest.web.app import WebApp


def client(settings) -> Client:
    return Client(WebApp(settings, modules=("tests.web.routes_for_test",)))


def test_routes_come_from_their_module(settings):
    answer = client(settings).get("/hello/ann")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "hello ann from Innovation Hub News"
    assert client(settings).post("/echo", data=b"List-Unsubscribe=One-Click").get_data() == \
        b"List-Unsubscribe=One-Click"


def test_unknown_paths_and_methods(settings):
    assert client(settings).get("/nowhere").status_code == 404
    answer = client(settings).get("/echo")
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    # No redirect for a trailing slash: one-click POSTs must not be redirected (RFC 8058).
    answer = client(settings).post("/echo/", data=b"x")
    assert answer.status_code == 200 and "Location" not in answer.headers


def test_a_failing_handler_answers_500_without_the_traceback(settings, caplog):
    answer = client(settings).get("/boom")
    assert answer.status_code == 500
    assert "secret detail" not in answer.get_data(as_text=True)
    assert "secret detail that must not reach the reader" in caplog.text
