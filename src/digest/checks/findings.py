"""What a check finds: a level, a code, where (file:line), what is wrong and what to do; the codes' catalogue."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ERROR, WARNING, NOTE = "error", "warning", "note"  # a note is shown and never stops a send

# code → (level, what it means). The docs' sending guide lists them (a test keeps it complete).
CODES: dict[str, tuple[str, str]] = {
    "audience-empty": (ERROR, "Nobody would receive the issue (after tags, suppressions and invalid rows)."),
    "audience-unknown-tag": (ERROR, "The issue's audience names a tag that no subscriber in the list has."),
    "list-no-valid-rows": (ERROR, "Not one row of the list is a usable subscriber."),
    "list-invalid-rows": (NOTE, "Some rows of the list are invalid and will be skipped (list hygiene)."),
    "merge-syntax": (ERROR, "Template syntax digest does not fill would reach readers literally."),
    "merge-unknown-field": (ERROR, "A merge field that no list column provides and that has no default."),
    "merge-default-only": (WARNING, "A merge field no column provides: every reader gets its default."),
    "merge-missing-value": (ERROR, "Rows with no value for a merge field that has no default."),
    "merge-unsafe-value": (ERROR, "A list value would put template syntax or a script link into the email."),
    "size-near-clip": (WARNING, "The HTML part is close to Gmail's 102,400-byte clipping limit."),
    "size-clipped": (ERROR, "Gmail clips the HTML part (and hides the footer with the unsubscribe link)."),
    "size-message": (WARNING, "The whole message is large (slow on mobile, near providers' limits)."),
    "size-message-limit": (ERROR, "The whole message is over the 10 MB most providers accept."),
    "image-missing-file": (ERROR, "An image file the issue names does not exist."),
    "image-no-alt": (ERROR, "An image has no alt text."),
    "image-http": (WARNING, "An image is loaded over plain http (clients block or warn)."),
    "image-not-absolute": (ERROR, "An image URL is not absolute: mail clients cannot load it."),
    "image-no-size": (ERROR, "An image has no pixel width attribute (Outlook shows it at its natural size)."),
    "image-no-height": (WARNING, "An image has no pixel height attribute (digest measures local files only)."),
    "link-empty": (ERROR, "A link has an empty href."),
    "link-scheme": (ERROR, "A link uses a scheme that is not http(s), mailto or tel (javascript:, data: …)."),
    "link-not-absolute": (ERROR, "A link is relative: it leads nowhere from an inbox."),
    "link-http": (WARNING, "A link uses plain http."),
    "link-broken": (WARNING, "A link did not answer with success (only with --online)."),
    "compliance-postal-address": (ERROR, "The postal address is missing from the HTML or the text part."),
    "compliance-unsubscribe-link": (ERROR, "No visible unsubscribe link in the HTML or the text part."),
    "compliance-one-click": (ERROR, "List-Unsubscribe has no https URL, so no one-click unsubscribe header."),
    "compliance-lang": (ERROR, "The HTML has no lang attribute."),
    "compliance-text-part": (ERROR, "The plain-text part is empty."),
    "compliance-preheader": (WARNING, "The issue has no preheader: inboxes show the first words of the body."),
    "feedback-complaint-rate": (WARNING, "The previous send's spam complaint rate is above [feedback] "
                                "max_complaint_rate (0.3 % by default)."),
    "feedback-bounce-rate": (WARNING, "The previous send's hard-bounce rate is above [feedback] max_hard_bounce_rate."),
    "dns-lookup-failed": (ERROR, "A DNS lookup failed (timeout, SERVFAIL): the DNS checks could not finish (--dns)."),
    "dns-spf-missing": (ERROR, "The domain has no SPF record (--dns)."),
    "dns-spf-multiple": (ERROR, "The domain has more than one SPF record: receivers treat that as an error (--dns)."),
    "dns-spf-syntax": (ERROR, "The SPF record has terms receivers reject (--dns)."),
    "dns-spf-lookups": (ERROR, "The SPF record needs more than 10 DNS lookups, includes counted through (--dns)."),
    "dns-spf-not-covering": (WARNING, "SPF does not authorise the SMTP relay's addresses or the provider's include "
                             "(--dns)."),
    "dns-dkim-missing": (ERROR, "No DKIM record at the selector digest (or the provider) signs with (--dns)."),
    "dns-dkim-mismatch": (ERROR, "The selector's DKIM record is not the configured private key's public half "
                          "(--dns)."),
    "dns-dkim-unsigned": (WARNING, "digest does not DKIM-sign (no [dkim] selector); a relay's signature cannot be "
                          "checked (--dns)."),
    "dns-dmarc-missing": (ERROR, "The From domain has no DMARC record (--dns)."),
    "dns-dmarc-invalid": (ERROR, "The DMARC record has no valid p= policy (--dns)."),
    "dns-dmarc-policy-none": (NOTE, "The DMARC policy is p=none: reports only (--dns)."),
    "dns-dmarc-unaligned": (ERROR, "Neither SPF nor DKIM aligns with the From domain, so DMARC fails (--dns)."),
    "dns-bounce-no-mx": (WARNING, "The bounce (envelope) domain has no MX record (--dns)."),
}


@dataclass(frozen=True)
class Finding:
    """One problem: `where` is 'file:line' (issue, template or list) or '' for the message as a whole."""

    code: str
    message: str
    where: str = ""
    hint: str = ""

    @property
    def level(self) -> str:
        """error (stops a send), warning (a send needs it accepted) or note (shown only)."""
        return CODES[self.code][0]

    def line(self) -> str:
        """'error   merge-syntax  issues/x.yaml:12: …' — the form `digest check` prints."""
        where = f"{self.where}: " if self.where else ""
        return f"{self.level:7} {self.code}  {where}{self.message}"


@dataclass
class CheckReport:
    """Every finding for one issue (and list), with the figures the checks measured."""

    slug: str
    findings: list[Finding] = field(default_factory=list)
    list_path: str = ""
    recipients: int | None = None      # None: the list was not read (a resume, or no list)
    largest_html_bytes: int = 0        # the HTML part after personalisation, largest recipient
    largest_message_bytes: int = 0
    links_checked: int = 0             # --online only

    def add(self, code: str, message: str, where: str = "", hint: str = "") -> None:
        """Record one finding (its level comes from the code)."""
        self.findings.append(Finding(code, message, where, hint))

    @property
    def errors(self) -> list[Finding]:
        """Findings that stop a send."""
        return [f for f in self.findings if f.level == ERROR]

    @property
    def notes(self) -> list[Finding]:
        """Findings that are shown and never stop a send."""
        return [f for f in self.findings if f.level == NOTE]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that a send needs accepted (--accept-warnings or the issue's accept_warnings)."""
        return [f for f in self.findings if f.level == WARNING]

    def unaccepted_warnings(self, accepted: set[str] | bool) -> list[Finding]:
        """Warnings not accepted: `accepted` is True (all), or the codes an issue accepts."""
        if accepted is True:
            return []
        return [f for f in self.warnings if f.code not in (accepted or set())]

    def to_json(self) -> dict:
        """The report as plain data (`digest check --json`)."""
        return {"slug": self.slug, "list": self.list_path, "recipients": self.recipients,
                "largest_html_bytes": self.largest_html_bytes, "largest_message_bytes": self.largest_message_bytes,
                "links_checked": self.links_checked,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [{**asdict(f), "level": f.level} for f in self.findings]}
