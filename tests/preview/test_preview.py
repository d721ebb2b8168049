"""`digest preview` without a browser: dark-mode rewrite, issue states, renders per change, HTTP safety, CLI."""

from __future__ import annotations

import datetime as dt
import errno
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.clock import format_when
from digest.errors import ConfigError
from digest.preview.dark import emulate_color_scheme
from tests.helpers.project import EXAMPLE_ISSUE

UTC = dt.timezone.utc


# --- dark mode --------------------------------------------------------------------------------

EMAIL = """<html><head><meta name="color-scheme" content="light dark">\
<meta name="supported-color-schemes" content="light dark">
<style>
.a { color: #000; }
@media (prefers-color-scheme: dark) { .a { color: #fff !important; } }
@media screen and (max-width: 480px) and (prefers-color-scheme:dark) { .b { color: red; } }
@media (prefers-color-scheme: light) { .c { color: blue; } }
</style></head><body><p>Write @media (prefers-color-scheme: dark) rules.</p></body></html>"""


def test_dark_mode_makes_the_dark_rules_unconditional_and_keeps_other_conditions():
    out = emulate_color_scheme(EMAIL, "dark")
    assert "@media (min-width: 0px) { .a { color: #fff !important; } }" in out
    assert "@media screen and (max-width: 480px) and (min-width: 0px) { .b" in out
    assert "@media (max-width: -1px) { .c { color: blue; } }" in out
    assert '<meta name="color-scheme" content="dark">' in out
    assert '<meta name="supported-color-schemes" content="dark">' in out
    assert "<style>:root { color-scheme: dark !important; }</style></head>" in out
    # Text of the email is not CSS: it stays as written.
    assert "<p>Write @media (prefers-color-scheme: dark) rules.</p>" in out


def test_light_mode_switches_the_dark_rules_off_whatever_the_viewer_prefers():
    out = emulate_color_scheme(EMAIL, "light")
    assert "@media (max-width: -1px) { .a { color: #fff !important; } }" in out
    assert "@media (min-width: 0px) { .c { color: blue; } }" in out
    assert '<meta name="color-scheme" content="light">' in out
    with pytest.raises(ValueError, match="mode must be one of"):
        emulate_color_scheme(EMAIL, "sepia")


# --- issue states -----------------------------------------------------------------------------

def _with_schedule(project: Path, lines: str) -> None:
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("date: 2023-12-21\n", f"date: 2023-12-21\n{lines}", 1), encoding="utf-8")


def _state(settings, now):
    from digest.preview.project import PreviewProject

    listing = PreviewProject(settings, now=lambda: now).listing()
    (entry,) = [e for e in listing["issues"] if e["slug"] == EXAMPLE_ISSUE]
    return entry["state"], listing


def test_states_draft_scheduled_due_and_expired_follow_the_clock(project, settings):
    assert _state(settings, dt.datetime(2023, 12, 1, tzinfo=UTC))[0] == {"kind": "draft", "label": "draft"}
    _with_schedule(project, "send_at: 2023-12-21T09:00:00+01:00\nnot_after: 2023-12-22T18:00:00+01:00\n")
    state, listing = _state(settings, dt.datetime(2023, 12, 20, tzinfo=UTC))
    # The same state and the same time format as `digest schedule` (the one status model and formatter).
    send_at = dt.datetime(2023, 12, 21, 9, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert state == {"kind": "scheduled", "label": f"scheduled for {format_when(send_at, as_written=False)}"}
    assert _state(settings, dt.datetime(2023, 12, 21, 12, tzinfo=UTC))[0]["kind"] == "due"
    not_after = dt.datetime(2023, 12, 22, 18, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert _state(settings, dt.datetime(2023, 12, 23, tzinfo=UTC))[0] == {
        "kind": "expired", "label": f"not sent; too late since {format_when(not_after, as_written=False)}"}
    # Looking never creates a ledger.
    assert not (project / ".digest" / "ledger.sqlite3").exists()
    assert listing["ledger_error"] is None


def test_sent_state_comes_from_the_ledger(project, settings):
    from digest.store.ledger import Ledger
    from digest.store.rows import Outcome

    with Ledger.for_settings(settings) as ledger:
        send = ledger.create_send(EXAMPLE_ISSUE, content_fp="c", list_fp="l", settings_fp="s", list_path="x.csv",
                                  subject="S", recipients=[("a@example.org", "a@example.org", "", {}, (), 2),
                                                           ("b@example.org", "b@example.org", "", {}, (), 3)])
        first, second = ledger.claim(send.id, 2)
        ledger.record([Outcome(first.id, "sent"), Outcome(second.id, "failed", error="550", permanent=True)])
        ledger.set_send_state(send.id, "finished")
        finished = ledger.get_send(EXAMPLE_ISSUE).finished_at
    state, _ = _state(settings, dt.datetime(2030, 1, 1, tzinfo=UTC))
    stamp = format_when(dt.datetime.fromisoformat(finished.replace("Z", "+00:00")), as_written=False)
    assert state == {"kind": "sent", "label": f"sent {stamp} (1 of 2, 1 failed)"}


def test_a_damaged_ledger_does_not_break_the_list(project, settings):
    ledger = project / ".digest" / "ledger.sqlite3"
    ledger.parent.mkdir()
    ledger.write_bytes(b"this is not a database" * 100)
    state, listing = _state(settings, dt.datetime(2023, 12, 1, tzinfo=UTC))
    assert state["kind"] == "draft"
    assert "cannot read the send ledger" in listing["ledger_error"]


def test_a_broken_issue_is_listed_with_its_file_and_line(project, settings):
    from digest.preview.project import PreviewProject

    (project / "issues" / "2024-02-draft.yaml").write_text(
        "subject: Hello\ntitle: Next\ndate: 2024-02-01\nsections:\n  - title: One\n    bodyy: x\n", encoding="utf-8")
    listing = PreviewProject(settings).listing()
    broken, good = listing["issues"]
    assert broken["slug"] == "2024-02-draft" and broken["title"] is None
    assert broken["error"]["file"] == "issues/2024-02-draft.yaml" and broken["error"]["line"] == 6
    assert "section 1 ('One'): unknown field 'bodyy'" in broken["error"]["message"]
    assert good["slug"] == EXAMPLE_ISSUE and good["title"] == "Learning & Innovation Highlights 2023"


def test_issues_are_listed_newest_first(project, settings):
    from digest.preview.project import PreviewProject

    source = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    for slug, date in [("2024-03-spring", "2024-03-01"), ("2022-06-old", "2022-06-01")]:
        (project / "issues" / f"{slug}.yaml").write_text(source.replace("date: 2023-12-21", f"date: {date}"),
                                                         encoding="utf-8")
    slugs = [e["slug"] for e in PreviewProject(settings).listing()["issues"]]
    assert slugs == ["2024-03-spring", EXAMPLE_ISSUE, "2022-06-old"]


# --- renders, changes, settings ---------------------------------------------------------------

@pytest.fixture
def counted_renders(monkeypatch):
    import digest.compose.render

    calls = []
    real = digest.compose.render.render_issue

    def counting(issue, settings, **kw):
        calls.append(issue.slug)
        return real(issue, settings, **kw)

    monkeypatch.setattr(digest.compose.render, "render_issue", counting)
    return calls


def test_an_issue_is_rendered_once_per_change(project, settings, counted_renders):
    from digest.preview.project import PreviewProject

    preview = PreviewProject(settings)
    for email in (None, "fatima.elamrani@example.com", "thijs.jansen@example.org"):
        preview.frame_preview(EXAMPLE_ISSUE, email)
    preview.frame_html(EXAMPLE_ISSUE, None, "dark")
    assert counted_renders == [EXAMPLE_ISSUE]
    assert preview.poll() == []  # nothing changed: nothing dropped
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Shift the Power Lab 2.0", "Shift the Power Lab 3.0"),
                    encoding="utf-8")
    assert preview.poll() == [path]
    assert preview.generation == 1
    html = preview.frame_html(EXAMPLE_ISSUE, None, "light")
    preview.frame_preview(EXAMPLE_ISSUE, "fatima.elamrani@example.com")
    assert "Shift the Power Lab 3.0" in html
    assert counted_renders == [EXAMPLE_ISSUE, EXAMPLE_ISSUE]


def test_a_same_size_rewrite_within_one_clock_tick_is_still_seen(project, settings):
    from digest.preview.project import PreviewProject

    preview = PreviewProject(settings)
    path = project / "templates" / "newsletter.txt.j2"
    before = os.stat(path)
    path.write_text(path.read_text(encoding="utf-8").replace("Unsubscribe:", "Unsubscribe;"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only content differs
    assert preview.poll() == [path]


def test_changed_settings_are_reloaded_and_a_broken_file_is_shown_then_recovered(project, settings):
    from digest.preview.project import PreviewProject

    preview = PreviewProject(settings)
    toml = project / "digest.toml"
    good = toml.read_text(encoding="utf-8")
    toml.write_text(good.replace('reply_to = "Innovation Hub <hub@example.org>"',
                                 'reply_to = "Editors <editors@example.org>"'), encoding="utf-8")
    assert preview.poll() == [toml]
    assert preview.frame_preview(EXAMPLE_ISSUE, None).message.reply_to == "Editors <editors@example.org>"

    toml.write_text(good.replace("[colors]", "[colours]"), encoding="utf-8")
    preview.poll()
    with pytest.raises(ConfigError, match=r"unknown section \[colours\]"):
        preview.frame_preview(EXAMPLE_ISSUE, None)
    assert "unknown section [colours]. Did you mean [colors]?" in preview.listing()["config_error"]["message"]

    toml.write_text(good, encoding="utf-8")
    preview.poll()
    assert preview.listing()["config_error"] is None
    assert preview.frame_preview(EXAMPLE_ISSUE, None).message.reply_to == "Innovation Hub <hub@example.org>"


@pytest.mark.parametrize("file, old, new, where, text", [
    ("issues/{slug}.yaml", "date: 2023-12-21", "date: 2023-12-32", ("issues/{slug}.yaml", 6),
     "'date' = '2023-12-32' is not a date"),
    ("templates/partials/section.mjml.j2", "<mj-text css-class=\"dm-text\"><h2>", "<mj-txt css-class=\"dm-text\"><h2>",
     ("templates/partials/section.mjml.j2", 9), "unknown MJML element <mj-txt>"),
    ("templates/newsletter.mjml.j2", "  </mj-body>", "  </mj-column>\n  </mj-body>",
     ("templates/newsletter.mjml.j2", None), "invalid MJML"),
    ("templates/partials/masthead.mjml.j2", "{{ issue.title }}", "{{ issue.titel }}",
     ("templates/partials/masthead.mjml.j2", 23), "undefined template variable"),
])
def test_render_errors_name_their_file_and_line(project, settings, file, old, new, where, text):
    from digest.errors import DigestError
    from digest.preview.project import PreviewProject

    path = project / file.format(slug=EXAMPLE_ISSUE)
    source = path.read_text(encoding="utf-8")
    assert old in source
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    preview = PreviewProject(settings)
    with pytest.raises(DigestError) as caught:
        preview.frame_preview(EXAMPLE_ISSUE, None)
    error = preview.error_payload(caught.value)
    assert (error["file"], error["line"]) == (where[0].format(slug=EXAMPLE_ISSUE), where[1])
    assert text in error["message"]
    assert str(project) not in error["message"]  # paths are shown relative to the project
    path.write_text(source, encoding="utf-8")
    preview.poll()
    assert preview.frame_preview(EXAMPLE_ISSUE, None).message.subject.startswith("Innovation Hub News")


def test_without_a_subscriber_list_the_example_reader_is_used_and_the_page_says_why(project, settings):
    from digest.preview.project import PreviewProject

    (project / "subscribers.example.csv").unlink()
    preview = PreviewProject(settings).frame_preview(EXAMPLE_ISSUE, None)
    assert preview.subscriber.email == "reader@example.org"
    assert preview.warnings == (f"the subscriber list {project / 'subscribers.example.csv'} does not exist; "
                                "previewing as an example reader",)


def test_the_issue_named_on_the_command_line_can_live_outside_the_issues_folder(project, settings):
    from digest.preview.server import start_preview

    outside = project / "drafts" / "2024-05-side-project.yaml"
    outside.parent.mkdir()
    source = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    outside.write_text(source.replace("images/yellow-shape.png", "https://example.org/x.png"), encoding="utf-8")
    server = start_preview(settings, issue=str(outside), port=0)
    try:
        assert server.start_path == "/issue/2024-05-side-project"
        assert "2024-05-side-project" in server.project.issue_files()
        assert outside.resolve() in server.project.watched_files()
    finally:
        server.stop()


def test_subscriber_search_is_server_side_and_capped(project, settings):
    from digest.preview.subscribers import SEARCH_LIMIT, SubscriberIndex

    path = project / "big.csv"
    path.write_text("email,name\n" + "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(500)),
                    encoding="utf-8")
    index = SubscriberIndex()
    everyone = index.search(path, "")
    assert (len(everyone.matches), everyone.total_matches, everyone.count) == (SEARCH_LIMIT, 500, 500)
    some = index.search(path, "READER 42")  # by name, case-insensitive
    assert [m["email"] for m in some.matches] == ["reader42@example.org"] + [
        f"reader{i}@example.org" for i in range(420, 430)]
    assert index.find(path, "Reader499@Example.org").line == 501
    assert index.find(path, "nobody@example.org") is None
    missing = index.search(project / "nope.csv", "")
    assert missing.matches == [] and "does not exist" in missing.error


# --- the HTTP server --------------------------------------------------------------------------

def get(server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A raw GET as the signed-in browser: http.client sends the path exactly as given (no '..' clean-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": f"{server.cookie_name}={server.token}", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def non_loopback_address() -> str | None:
    """An address of this machine other than loopback (UDP 'connect' sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing decides the source address, no packet leaves
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address; the bound address was checked above")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, server.port), timeout=5)


def test_path_traversal_and_non_images_are_refused(server, project):
    image = project / "issues" / "images" / "yellow-shape.png"
    status, headers, body = get(server, f"/issue/{EXAMPLE_ISSUE}/files/images/yellow-shape.png")
    assert (status, headers["Content-Type"], body) == (200, "image/png", image.read_bytes())
    (project / "secret.png").write_bytes(b"\x89PNG outside the issues folder")
    (project / "issues" / "images" / "link.png").symlink_to(project / "secret.png")
    for path in ["/issue/{s}/files/../../secret.png", "/issue/{s}/files/..%2F..%2Fsecret.png",
                 "/issue/{s}/files/%2e%2e/%2e%2e/secret.png", "/issue/{s}/files//etc/passwd",
                 "/issue/{s}/files/%2Fetc%2Fpasswd", "/issue/{s}/files/images/link.png",
                 "/issue/{s}/files/{s}.yaml", "/issue/{s}/files/images/%00.png",
                 "/issue/..%2F..%2Fsecret.png/files/x.png", "/assets/..%2F..%2Fpreview.py"]:
        status, _, body = get(server, path.format(s=EXAMPLE_ISSUE))
        assert status == 404, path
        assert b"PNG outside" not in body


def test_an_image_the_issue_uses_from_outside_its_folder_is_shown_and_only_that_one(server, project):
    # A shared logo kept beside the issues folder, referenced as ../shared/logo.png.
    (project / "shared").mkdir()
    logo = project / "shared" / "logo.png"
    logo.write_bytes((project / "issues" / "images" / "yellow-shape.png").read_bytes())
    (project / "shared" / "other.png").write_bytes(b"\x89PNG not used by the issue")
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("src: images/yellow-shape.png",
                                                             "src: ../shared/logo.png", 1), encoding="utf-8")
    deadline = time.monotonic() + 10
    while True:  # the preview notices the edit and renders again
        page = get(server, f"/issue/{EXAMPLE_ISSUE}/email.html")[2].decode()
        if "logo.png" in page or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    local = f"/issue/{EXAMPLE_ISSUE}/files/..%2Fshared%2Flogo.png"
    assert f'src="{local}"' in page
    assert "https://example.org/shared/logo.png" not in page  # the frame never loads the published copy
    status, headers, body = get(server, local)
    assert (status, headers["Content-Type"], body) == (200, "image/png", logo.read_bytes())
    for other in ["..%2Fshared%2Fother.png", "../shared/other.png", "..%2F..%2Fshared%2Flogo.png"]:
        assert get(server, f"/issue/{EXAMPLE_ISSUE}/files/{other}")[0] == 404, other


def test_other_host_names_are_refused(server):
    status, _, body = get(server, "/api/issues", {"Host": f"attacker.example:{server.port}"})
    assert status == 421 and b"only on 127.0.0.1 and localhost" in body
    assert get(server, "/api/issues", {"Host": f"localhost:{server.port}"})[0] == 200


def test_email_frame_and_api(server):
    status, headers, body = get(server, f"/issue/{EXAMPLE_ISSUE}/email.html?mode=dark")
    page = body.decode()
    assert status == 200 and "script-src 'none'" in headers["Content-Security-Policy"]
    assert '<base target="_blank">' in page and '<meta name="color-scheme" content="dark">' in page
    assert f'src="/issue/{EXAMPLE_ISSUE}/files/images/yellow-shape.png"' in page
    assert get(server, f"/issue/{EXAMPLE_ISSUE}/email.html?mode=sepia")[0] == 400

    status, _, body = get(server, f"/api/issue/{EXAMPLE_ISSUE}?subscriber=ngozi.okafor%40example.org")
    data = json.loads(body)
    assert status == 200 and data["ok"] is True
    headers = dict(data["headers"])
    assert headers["To"] == "Ngozi Okafor <ngozi.okafor@example.org>"
    assert headers["List-Unsubscribe"].startswith("<https://example.org/newsletter/unsubscribe?token=dev.")
    assert headers["Preheader (inbox preview)"].startswith("It was a year full of inspiring connections")
    # The source view and the size are the email as sent: images on assets_url, not on the preview.
    assert re.search(r'src="https://example\.org/newsletter/images/yellow-shape\.[0-9a-f]{10}\.png"', data["html"])
    assert data["html_bytes"] == len(data["html"].encode()) and data["clipped"] is False
    assert "This email was sent to ngozi.okafor@example.org." in " ".join(data["text"].split())  # wrapped at 72

    data = json.loads(get(server, f"/api/issue/{EXAMPLE_ISSUE}?subscriber=nobody%40example.org")[2])
    assert data["ok"] and data["subscriber"]["email"] == "reader@example.org"
    assert data["warnings"] == ["nobody@example.org is not in subscribers.example.csv; showing the example reader instead."]

    status, headers, body = get(server, f"/issue/{EXAMPLE_ISSUE}/message.eml?subscriber=lea%40b%C3%BCcher.example.org")
    assert status == 200 and headers["Content-Type"] == "message/rfc822" and b"\r\nTo: " in body

    assert get(server, "/issue/no-such-issue")[0] == 404
    status, _, body = get(server, "/api/issue/no-such-issue")
    assert status == 404 and "no issue 'no-such-issue'" in json.loads(body)["error"]["message"]


def test_a_large_email_reports_gmail_clipping(server, project):
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 2000
    path.write_text(path.read_text(encoding="utf-8") +
                    f"outro: |\n  {filler}\n", encoding="utf-8")
    server.project.poll()
    data = json.loads(get(server, f"/api/issue/{EXAMPLE_ISSUE}")[2])
    assert data["ok"] and data["clipped"] is True and data["html_bytes"] > 102 * 1024


def read_event(sock_file, kind: str, deadline: float) -> str:
    event = None
    while time.monotonic() < deadline:
        line = sock_file.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == kind:
            return line[6:]
    raise AssertionError(f"no '{kind}' event in time")


def test_saving_a_file_sends_a_change_event(server, project):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                 f"Cookie: {server.cookie_name}={server.token}\r\n\r\n".encode())
    stream = sock.makefile("rb")
    assert stream.readline().startswith(b"HTTP/1.0 200")
    assert read_event(stream, "hello", time.monotonic() + 5) == "0"
    started = time.monotonic()
    path = project / "templates" / "partials" / "footer.mjml.j2"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert read_event(stream, "change", started + 5) == "1"
    assert time.monotonic() - started < 1.0  # "within about a second"
    # Stopping the server (Ctrl-C) ends open streams at once instead of at their next keep-alive.
    stopped = time.monotonic()
    server.stop()
    assert stream.read().strip() == b""  # the rest of the last event, then the end
    assert time.monotonic() - stopped < 2.0
    stream.close()
    sock.close()


def test_a_taken_default_port_moves_on_and_a_taken_explicit_port_is_an_error(settings):
    from digest.preview.project import PreviewProject
    from digest.preview.server import DEFAULT_PORT, PreviewError, bind_server

    project = PreviewProject(settings)
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", DEFAULT_PORT))
        blocker.listen()
    except OSError as exc:  # someone else holds it: the fallback is exercised all the same
        assert exc.errno == errno.EADDRINUSE
    try:
        server = bind_server(project, None)
        try:
            assert server.port != DEFAULT_PORT and server.server_address[0] == "127.0.0.1"
        finally:
            server.server_close()
        with pytest.raises(PreviewError, match=f"127.0.0.1:{DEFAULT_PORT}: cannot listen: Address already in use"):
            bind_server(project, DEFAULT_PORT)
    finally:
        blocker.close()


# --- the command ------------------------------------------------------------------------------

def test_cli_serves_until_ctrl_c(project):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    proc = subprocess.Popen([sys.executable, "-m", "digest", "preview", EXAMPLE_ISSUE, "--port", "0", "--no-open"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # A shell without job control starts background jobs with SIGINT ignored;
                            # give the child the terminal's default so Ctrl-C reaches it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        match = re.match(r"Previewing at http://127\.0\.0\.1:(\d+)/issue/([^?\s]+)\?token=(\S+) — it updates when "
                         r"you save", line)
        assert match, line
        assert match.group(2) == EXAMPLE_ISSUE
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", f"/api/issue/{EXAMPLE_ISSUE}",
                     headers={"Cookie": f"digest_preview_{match.group(1)}={match.group(3)}"})
        assert json.loads(conn.getresponse().read())["ok"] is True
        conn.close()
        path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
        path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        assert proc.stdout.readline() == f"changed: issues/{EXAMPLE_ISSUE}.yaml\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Preview stopped." in out and "Traceback" not in err


def test_cli_unknown_issue_is_an_error(project):
    from click.testing import CliRunner

    from digest.cli import cli

    result = CliRunner().invoke(cli, ["preview", "2023-12-learning-inovation-highlights", "--no-open"])
    assert result.exit_code != 0
    assert "no issue '2023-12-learning-inovation-highlights'" in str(result.exception)
    assert "Did you mean '2023-12-learning-innovation-highlights'?" in str(result.exception)
