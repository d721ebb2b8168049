"""What the preview shows of a project: the issue list with states, renders once per change, frames.

The watched files are polled by preview/watch.py; a change drops the stale renders and wakes the
open pages' event streams.
"""


from __future__ import annotations

import html
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote

from digest.audience.lookup import example_subscriber
from digest.audience.tokens import KeyRing
from digest.clock import Clock, utc_now
from digest.compose.render import asset_url
from digest.errors import DigestError, IssueError, MergeError, SubscriberError
from digest.preview.dark import emulate_color_scheme
from digest.preview.subscribers import SubscriberIndex
from digest.preview.watch import changed_files, file_stamp, scan, walk
from digest.status import label, open_ledger, status_of

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.compose.render import Rendered
    from digest.config import Settings

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml", ".avif": "image/avif", ".ico": "image/x-icon"}
# "issues/x.yaml:12: …", "templates/newsletter.mjml.j2: …", "digest.toml [send] …": a file name with
# an extension at the start of the message, then maybe a line number.
_WHERE_RE = re.compile(r"^(?P<file>[^\s:]+\.[A-Za-z0-9]+)(?::(?P<line>\d+))?(?=[:\s]|$)")


class NotFound(DigestError):
    """No issue with this slug in the issues folder (it may have been renamed or deleted)."""


@dataclass(frozen=True)
class FramePreview:
    """One subscriber's message as the issue page shows it."""

    message: object          # digest.transports.base.OutgoingMessage
    rendered: "Rendered"
    preheader: str
    subscriber: object       # digest.audience.subscribers.Subscriber
    in_audience: bool
    warnings: tuple[str, ...]
    checks: tuple[dict, ...] = ()  # the pre-send checks' findings (the list's columns, not every row)


class PreviewProject:
    """Settings, issues and renders of one project, kept current by `poll()`."""

    def __init__(self, settings: "Settings", *, extra_issues: tuple[Path, ...] = (), now: Clock = utc_now):
        self.settings = settings
        self.config_path = settings.config_path
        self.settings_error: DigestError | None = None
        self.extra_issues = tuple(Path(p).resolve() for p in extra_issues)
        self.now = now
        self.generation = 0
        self.closed = False
        self._lock = threading.RLock()             # settings, caches and renders
        self._changed = threading.Condition()      # wakes live-reload streams
        self._renders: dict[str, tuple] = {}       # slug → (Rendered | None, DigestError | None)
        self._personalizers: dict[str, object] = {}
        self._checks: dict[str, tuple[dict, ...]] = {}  # slug → findings of the current render
        self._issues: dict[Path, tuple] = {}       # path → (stamp, Issue | None, DigestError | None)
        self._signer = None
        self.subscribers = SubscriberIndex()
        self._stamps = self._scan()

    # --- watching -----------------------------------------------------------------------------

    def watched_files(self) -> list[Path]:
        """Every file whose change re-renders: settings, issues (and their images), templates, list."""
        files: set[Path] = set()
        if self.config_path is not None:
            files.add(Path(self.config_path))
        for name in ("issues", "templates"):
            folder = self.settings.path(name)
            if folder.is_dir():
                files.update(walk(folder))
        files.add(self.settings.path("subscribers"))
        files.update(self.extra_issues)
        with self._lock:
            for rendered, _ in self._renders.values():
                if rendered is not None:
                    files.update(rendered.assets)
        return sorted(files)

    def _scan(self) -> dict[Path, tuple | None]:
        return scan(self.watched_files())

    def poll(self) -> list[Path]:
        """Look for changed files once; on a change drop the stale renders and wake the open pages."""
        stamps = self._scan()
        old = self._stamps
        changed = changed_files(old, stamps)
        if not changed:
            return []
        with self._lock:
            self._stamps = stamps
            self._checks.clear()  # a list change alters them too (columns)
            if self.config_path is not None and Path(self.config_path) in changed:
                self._reload_settings()
            list_path = self.settings.path("subscribers")
            if any(p != list_path for p in changed):
                from digest.compose.render import forget_compiled_templates

                # Jinja's own reload check is by mtime; a same-second rewrite must not be missed.
                forget_compiled_templates()
                self._renders.clear()
                self._personalizers.clear()
            self._stamps = self._scan()  # reloaded settings may watch other folders
        with self._changed:
            self.generation += 1
            self._changed.notify_all()
        return changed

    def _reload_settings(self) -> None:
        from digest.config import load_settings

        try:
            self.settings = load_settings(self.config_path)
            self.settings_error = None
        except DigestError as exc:
            self.settings_error = exc  # keep the last good settings for watching; pages show the error
        self._signer = None

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until the generation passes `since`, `timeout` seconds pass or close(); the current one."""
        with self._changed:
            self._changed.wait_for(lambda: self.generation != since or self.closed, timeout=timeout)
            return self.generation

    def close(self) -> None:
        """Release every waiting stream (the server is stopping)."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    # --- issues -------------------------------------------------------------------------------

    def issue_files(self) -> dict[str, Path]:
        """slug → file for every issue in the issues folder (plus one named on the command line)."""
        from digest.compose.issue import issue_paths

        files = {p.stem: p for p in issue_paths(self.settings)}
        for extra in self.extra_issues:
            files[extra.stem] = extra
        return files

    def _path_of(self, slug: str) -> Path:
        path = self.issue_files().get(slug)
        if path is None:
            raise NotFound(f"no issue '{slug}' in {self.settings.path('issues')}.",
                           "it may have been renamed or deleted; go back to the list of issues")
        return path

    def _load(self, path: Path) -> tuple["Issue | None", DigestError | None]:
        from digest.compose.issue import load_issue

        stamp = file_stamp(path)
        cached = self._issues.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        try:
            issue, error = load_issue(path), None
        except DigestError as exc:
            issue, error = None, exc
        self._issues[path] = (stamp, issue, error)
        return issue, error

    def listing(self) -> dict:
        """The index page's data: every issue, newest first, with its state (the one status model) or its error."""
        with self._lock:
            files = self.issue_files()
            for gone in set(self._issues) - set(files.values()):
                del self._issues[gone]
            ledger, ledger_error = self._ledger()
            try:
                entries = [self._entry(slug, path, ledger) for slug, path in files.items()]
            except (DigestError, sqlite3.Error) as exc:
                # The ledger is the sender's business: the preview still lists the issues without it.
                ledger_error = f"cannot read the send ledger: {exc}"
                entries = [self._entry(slug, path, None) for slug, path in files.items()]
            finally:
                if ledger is not None:
                    ledger.close()
        # Newest first by date; a broken file (no date to sort by) goes on top: it is being edited.
        entries.sort(key=lambda e: (e["date"] is None, e["date"] or "", e["slug"]), reverse=True)
        return {"generation": self.generation, "issues": entries, "ledger_error": ledger_error,
                "config_error": self.error_payload(self.settings_error) if self.settings_error else None,
                "issues_folder": self.display(self.settings.path("issues"))}

    def _ledger(self):
        """The ledger read-only (None when nothing was ever sent), and why it could not be opened."""
        try:
            return open_ledger(self.settings), None
        except (DigestError, sqlite3.Error) as exc:
            return None, f"cannot read the send ledger: {exc}"

    def _entry(self, slug: str, path: Path, ledger) -> dict:
        """One row of the index page."""
        issue, error = self._load(path)
        entry = {"slug": slug, "file": self.display(path), "url": f"/issue/{quote(slug)}",
                 "title": None, "subject": None, "date": None, "state": None, "error": None}
        if issue is None:
            entry["error"] = self.error_payload(error)
            return entry
        now = self.now()
        notes = ledger.notes() if ledger is not None else {}
        status = status_of(self.settings, path, issue, ledger, notes, now)
        entry.update(title=issue.title, subject=issue.subject, date=issue.date.isoformat(),
                     state={"kind": status.state, "label": label(status, now)})
        return entry

    def render(self, slug: str) -> "Rendered":
        """The issue rendered once per change (a render error is cached and raised, too)."""
        from digest.compose.issue import load_issue
        from digest.compose.render import render_issue

        with self._lock:
            if self.settings_error is not None:
                raise self.settings_error
            path = self._path_of(slug)
            if slug not in self._renders:
                try:
                    self._renders[slug] = (render_issue(load_issue(path), self.settings), None)
                except DigestError as exc:
                    self._renders[slug] = (None, exc)
            rendered, error = self._renders[slug]
            if error is not None:
                raise error
            return rendered

    def _personalizer(self, slug: str, rendered: "Rendered"):
        from digest.delivery.personalize import Personalizer

        if self._signer is None:
            self._signer = KeyRing.for_settings(self.settings, allow_dev_key=True)
        if slug not in self._personalizers:
            self._personalizers[slug] = Personalizer(rendered, self.settings, self._signer,
                                                     source=self.settings.path("subscribers"))
        return self._personalizers[slug]

    def _subscriber(self, email: str | None) -> tuple[object, list[str]]:
        """The subscriber to personalise for, and what to tell the page when it is not the one asked for."""
        list_path = self.settings.path("subscribers")
        listed = self.subscribers.search(list_path, "", limit=1)
        if listed.error:  # no list, or an unreadable one: the example reader, and say why
            return example_subscriber(), [listed.error]
        wanted = email or (listed.matches[0]["email"] if listed.matches else None)
        try:
            sub = self.subscribers.find(list_path, wanted) if wanted else None
        except SubscriberError as exc:  # the file changed under us between the two reads
            return example_subscriber(), [str(exc)]
        if sub is not None:
            return sub, []
        if email:
            return example_subscriber(), [f"{email} is not in {self.display(list_path)}; "
                                          "showing the example reader instead."]
        return example_subscriber(), [f"no subscribers in {self.display(list_path)}; showing the example reader."]

    def frame_preview(self, slug: str, email: str | None) -> FramePreview:
        """The issue personalised for one subscriber (the list's first when `email` is None)."""
        from digest.audience.subscribers import in_audience

        with self._lock:
            rendered = self.render(slug)
            personalizer = self._personalizer(slug, rendered)
            sub, warnings = self._subscriber(email)
            try:
                message = personalizer.message_for(sub, recipient_id=0)
                values = personalizer.values_for(sub)
            except MergeError:
                # A misspelt field is the issue's fault, not the reader's row: point at the issue line.
                unknown = [c for c in self.check_findings(slug, rendered, personalizer)
                           if c["code"] == "merge-unknown-field"]
                if unknown:
                    raise IssueError(f"{unknown[0]['where']}: {unknown[0]['message']}", unknown[0]["hint"]) from None
                raise
            checks = self.check_findings(slug, rendered, personalizer)
        preheader = rendered.preheader.fill(values)
        return FramePreview(message=message, rendered=rendered, preheader=preheader, subscriber=sub,
                            in_audience=in_audience(sub, rendered.issue.audience), warnings=tuple(warnings),
                            checks=checks)

    def check_findings(self, slug: str, rendered: "Rendered", personalizer) -> tuple[dict, ...]:
        """The pre-send checks on this render, once per change (`digest check` also reads every row)."""
        from digest.checks.run import check_rendered

        if slug not in self._checks:
            report = check_rendered(self.settings, rendered.issue, rendered, personalizer,
                                    list_path=self.settings.path("subscribers"), read_list=False)
            self._checks[slug] = tuple({"level": f.level, "code": f.code, "where": f.where, "message": f.message,
                                        "hint": f.hint} for f in report.findings)
        return self._checks[slug]

    def frame_html(self, slug: str, email: str | None, mode: str) -> str:
        """The email HTML for the preview frame: local images, the chosen colour scheme, links in new tabs."""
        preview = self.frame_preview(slug, email)
        page = self.local_assets(preview.message.html, preview.rendered)
        page = emulate_color_scheme(page, mode)
        # Links in the email open in a new tab instead of replacing the preview inside the frame.
        return re.sub(r"<head([^>]*)>", lambda m: f'<head{m.group(1)}><base target="_blank">', page, count=1)

    def local_assets(self, page: str, rendered: "Rendered") -> str:
        """Point the email's published image URLs at this server's copy of the issue folder.

        The issue is rendered once, with the real assets_url, so the source view and the HTML size are
        those of the message that will be sent; only the frame's copy is rewritten.
        """
        # asset_url: the same joining rule the templates' `asset` filter uses
        issue = rendered.issue
        base = self.settings.newsletter.assets_url
        local_base = f"/issue/{quote(issue.slug)}/files/"
        for image in [issue.header_image, *(s.image for s in issue.sections)]:
            if image is None or re.match(r"^[a-z][a-z0-9+.-]*:|^//", image.src, re.I):
                continue
            published = html.escape(asset_url(rendered.published.get(image.src, image.src), base), quote=True)
            if ".." in PurePosixPath(image.src).parts:
                # Outside the issue's folder (a shared logo in ../images): one URL segment, which the
                # browser cannot normalise away; asset_file serves it because the issue uses it.
                local = html.escape(local_base + quote(image.src, safe=""), quote=True)
            else:
                local = html.escape(asset_url(image.src, local_base), quote=True)
            page = page.replace(f'"{published}"', f'"{local}"')
        return page

    def asset_file(self, slug: str, relative: str) -> tuple[Path, str] | None:
        """(file, content type) of an image inside the issue's folder, or of one the issue itself
        uses from elsewhere (`../images/logo.png`); None for anything else."""
        try:
            folder = self._path_of(slug).parent.resolve()
            path = Path(relative)
            if not path.parts or path.is_absolute():
                return None
            target = (folder / relative).resolve()
        except (NotFound, ValueError, OSError):
            return None
        inside = not any(part.startswith(".") for part in path.parts) and target.is_relative_to(folder)
        # resolve() follows symlinks, so a link pointing outside the folder is refused here as well,
        # unless the issue references that very file.
        if not inside and target not in self._used_assets(slug):
            return None
        if not target.is_file():
            return None
        kind = IMAGE_TYPES.get(target.suffix.lower())
        return (target, kind) if kind else None

    def _used_assets(self, slug: str) -> tuple[Path, ...]:
        """The resolved image files the issue's current render references (none if it does not render)."""
        try:
            return self.render(slug).assets
        except DigestError:
            return ()

    # --- display ------------------------------------------------------------------------------

    def display(self, path: Path | str) -> str:
        """A path relative to the project root when it is below it."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.settings.root.resolve()))
        except (ValueError, OSError):
            return str(path)

    def error_payload(self, exc: DigestError | None) -> dict | None:
        """An error as the pages show it: message, hint, and the file and line it names."""
        if exc is None:
            return None
        message = exc.message
        root = str(self.settings.root.resolve()) + os.sep
        message = message.replace(root, "")
        where = _WHERE_RE.match(message)
        return {"message": message, "hint": exc.hint, "kind": type(exc).__name__,
                "file": where.group("file") if where else None,
                "line": int(where.group("line")) if where and where.group("line") else None}
