"""The rendered email: size, images, links and what bulk senders must carry, checked on the final HTML."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.checks.helpers import ISSUE_FILE, edit_file, edit_issue, findings, line_of, write_list

SECTION = """  - title: Extra {n}
    body: |
      {text}
"""


def _grow(project, sections: int) -> None:
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60
    extra = "".join(SECTION.format(n=n, text=text) for n in range(sections))
    edit_issue(project, "sections:\n", "sections:\n" + extra)


def test_size_near_and_over_gmails_clip(project):
    _grow(project, 6)  # each such section adds ~7.7 KB to the example's ~53 KB
    found = findings(project)
    assert "size-clipped" not in found
    [near] = found["size-near-clip"]
    assert near.message.startswith("the HTML part is ") and "close to Gmail's 102,400-byte clip" in near.message
    _grow(project, 1)
    [clipped] = findings(project)["size-clipped"]
    assert clipped.level == "error" and "Gmail clips it after 102,400" in clipped.message


def test_the_largest_reader_decides_the_size(project):
    # One reader with a very long name tips their own copy over: the check sizes every reader.
    _grow(project, 5)  # ~91.6 KB for a reader with a short name: just under the warning
    edit_issue(project, "As we look back", "Dear {{ first_name }}, as we look back")
    write_list(project, [["ann@example.org", "Ann", ""], ["bo@example.org", "Bo " * 400, ""]])
    [near] = findings(project)["size-near-clip"]
    assert "bytes for bo@example.org, close to Gmail's" in near.message


def test_images_http_missing_file(project):
    edit_issue(project, "  src: images/yellow-shape.png\n", "  src: http://example.org/banner.png\n")
    found = findings(project)
    [http] = found["image-http"]
    assert http.message == "the image http://example.org/banner.png is loaded over plain http."
    assert http.where == f"{ISSUE_FILE}:{line_of(project, 'http://example.org/banner.png')}"
    [height] = found["image-no-height"]  # a remote image: digest cannot measure it
    assert height.level == "warning"


def test_an_image_file_that_does_not_exist_is_named_with_its_line(project):
    edit_issue(project, "  alt: yellow shape\n", "  alt: yellow shape\n  dark_src: images/missing-dark.png\n")
    [missing] = findings(project)["image-missing-file"]
    assert missing.message == "image file issues/images/missing-dark.png does not exist."
    assert missing.where == f"{ISSUE_FILE}:{line_of(project, 'dark_src:')}"


@pytest.mark.parametrize("url, code, level", [
    ("/innovation-festival", "link-not-absolute", "error"),
    ("http://example.org/festival", "link-http", "warning"),
])
def test_links_in_the_issue_must_be_absolute_https(project, url, code, level):
    # (cta.url is checked when the file loads: it must start with https://, http:// or mailto:.)
    edit_issue(project, "[On this page](https://example.org/innovation-hub/innovation-festival-2023)",
               f"[On this page]({url})")
    [finding] = findings(project)[code]
    assert finding.level == level
    assert finding.where == f"{ISSUE_FILE}:{line_of(project, url)}"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,hi", ""])
def test_script_data_and_empty_links_in_a_template_are_errors(project, url):
    footer = project / "templates" / "partials" / "footer.mjml.j2"
    edit_file(footer, ">Unsubscribe</a>", f'>Unsubscribe</a> · <a href="{url}">Settings</a>')
    code = "link-empty" if not url else "link-scheme"
    [finding] = findings(project)[code]
    assert finding.level == "error"


def test_a_merge_value_used_as_a_link_must_be_an_http_address(project):
    edit_file(project / "templates" / "partials" / "footer.mjml.j2", "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
              "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> · <a href=\"{{ subscriber.homepage }}\">You</a>")
    write_list(project, [["ann@example.org", "Ann", "", "https://ann.example"],
                         ["bo@example.org", "Bo", "", "javascript:alert(1)"]],
               header=("email", "first_name", "tags", "homepage"))
    [finding] = findings(project)["merge-unsafe-value"]
    assert finding.message == ("1 reader(s) have values that would break their copy: subscribers.example.csv:3 "
                               "(homepage = 'javascript:alert(1)' is used as a link but is not an http(s) address).")


def test_compliance_postal_address_unsubscribe_one_click_lang_preheader(project):
    toml = project / "digest.toml"
    edit_file(toml, 'postal_address = "Partos, Ellermanstraat 18B, 1114 AK Amsterdam, The Netherlands"',
              'postal_address = ""')
    edit_file(toml, 'url = "https://example.org/newsletter/unsubscribe?token={token}"',
              'url = "http://example.org/newsletter/unsubscribe?token={token}"')
    edit_file(toml, 'language = "en"', 'language = ""')
    edit_issue(project, 'preheader: "It was a year full of inspiring connections and amazing sessions. '
               'We are stronger together!"\n', "")
    found = findings(project)
    assert [f.message for f in found["compliance-postal-address"]] == [
        "the HTML part does not show the postal address.", "the text part does not show the postal address."]
    assert found["compliance-one-click"][0].where == "digest.toml [unsubscribe] url"
    assert found["compliance-lang"][0].message == "the HTML has no lang attribute."
    assert found["compliance-preheader"][0].level == "warning"


def test_an_unsubscribe_link_missing_from_both_parts(project):
    edit_file(project / "templates" / "partials" / "footer.mjml.j2",
              " · <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>", "")
    edit_file(project / "templates" / "newsletter.txt.j2", "Unsubscribe: {{ unsubscribe_url }}\n", "")
    messages = [f.message for f in findings(project)["compliance-unsubscribe-link"]]
    assert messages == ["the HTML part has no visible unsubscribe link.", "the text part has no unsubscribe link."]


class _Links(BaseHTTPRequestHandler):
    """/ok answers; /gone is 404; /no-head refuses HEAD (405) but answers GET."""

    def do_HEAD(self):
        self.send_response({"/ok": 200, "/gone": 404, "/no-head": 405}.get(self.path, 404))
        self.end_headers()

    def do_GET(self):
        self.send_response(200 if self.path in ("/ok", "/no-head") else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_online_link_check_against_a_local_server(project):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "https://example.org/innovation-hub/"
    local = f"http://127.0.0.1:{server.server_port}"
    edit_file(project / "digest.toml", 'website = "https://example.org/innovation-hub"', f'website = "{local}/ok"')
    try:
        path = project / ISSUE_FILE
        text = path.read_text(encoding="utf-8")
        # The issue's three links, pointed at the local server (the test never leaves this machine).
        text = text.replace(f"{base}dei-learning-trajectory-2023", f"http://127.0.0.1:{server.server_port}/ok")
        text = text.replace(f"{base}digital-maturity-quick-scan", f"http://127.0.0.1:{server.server_port}/gone")
        text = text.replace(f"{base}innovation-festival-2023", f"http://127.0.0.1:{server.server_port}/no-head")
        path.write_text(text, encoding="utf-8")
        from digest.checks.run import check_issue
        from digest.config import load_settings

        report = check_issue(load_settings(project / "digest.toml"), "2023-12-learning-innovation-highlights",
                             online=True)
    finally:
        server.shutdown()
    broken = [f.message for f in report.findings if f.code == "link-broken"]
    assert broken == [f"{local}/gone answered 404 Not Found."]
    assert report.links_checked == 3  # the issue's three (the website is /ok too): nothing else was tried
