"""The unsubscribe page in real headless Chromium: the button POSTs, the undo button resubscribes."""

from __future__ import annotations

import pytest

from digest.store.ledger import Ledger
from tests.helpers.browser import BROWSER_MARKS
from tests.helpers.web import running_server, token_for

pytestmark = BROWSER_MARKS

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
READER = "ann.reader@example.net"


def suppressed(settings) -> list[tuple[str, str]]:
    with Ledger.for_settings(settings) as ledger:
        return [(email, source) for email, _, source, _ in ledger.iter_suppressions()]


def test_the_button_unsubscribes_and_the_undo_resubscribes(settings, monkeypatch, browser):
    with running_server(settings, monkeypatch) as srv:
        context = browser.new_context()
        page = context.new_page()
        url = f"{srv.url}/unsubscribe?token={token_for(settings, READER)}"
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe from Innovation Hub News?")
        assert suppressed(settings) == []  # loading the page changed nothing
        button = page.get_by_role("button", name="Unsubscribe")
        button.focus()  # reachable from the keyboard
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
        assert page.url == url  # the POST answered in place: no redirect
        assert context.cookies() == []
        assert suppressed(settings) == [(READER, "web")]
        page.get_by_role("button", name="I clicked by mistake — resubscribe").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed again")
        assert suppressed(settings) == []
        context.close()
