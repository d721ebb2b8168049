"""Every section of digest.toml as a dataclass: each key's type, default and description.

The loader (digest/config.py) validates a file against these; the settings reference and the
digest.toml that `digest init` writes are generated from them, so a key cannot exist undocumented.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Any = None) -> Any:
    """A settings field with its description: `metadata["doc"]` feeds the generated settings reference."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class NewsletterSettings:
    name: str = setting("My Newsletter", "The newsletter's name: the line above each issue's title (unless the "
                        "issue sets `kicker`), the footer, and the default List-Id.")
    from_: str = setting("My Newsletter <newsletter@example.org>", "The From header of every message, e.g. "
                         "`Innovation Hub News <innovationhub@example.org>`; also the envelope sender unless "
                         "[send] bounce_address is set.")
    reply_to: str | None = setting(None, "Optional Reply-To header, e.g. `Innovation Hub <hub@example.org>`.")
    postal_address: str = setting("Example Organisation, 1 Example Street, 1000 AA Example City",
                                  "Postal address shown in the footer (required by law for bulk mail).")
    website: str = setting("https://example.org", "The newsletter's website: linked in the footer and from the logo.")
    logo: str | None = setting(None, "Optional logo image shown above the title, 160 px wide, linked to `website`.")
    assets_url: str = setting("https://example.org/newsletter/", "Where relative image paths are published: in the "
                              "email, an image given by a relative path points here.")
    language: str = setting("en", "Language of the email (`<html lang>`).")
    template: str = setting("newsletter", "Template used unless an issue names one: templates/<name>.mjml.j2 and "
                            "<name>.txt.j2.")
    why: str = setting("You are receiving this because you subscribed to our newsletter.",
                       "Footer line telling the reader why they get this email.")
    list_id: str | None = setting(None, "Optional List-Id (default: a slug of the name on the From domain); also "
                                  "the newsletter id signed into unsubscribe tokens.")


@dataclass
class ColorSettings:
    brand: str = setting("#1f5f8b", "Headings, the kicker and call-to-action buttons.")
    accent: str = setting("#f2c200", "The bar above the masthead.")
    text: str = setting("#222222", "Body text.")
    background: str = setting("#f3f3f0", "Background around the cards.")
    card: str = setting("#ffffff", "Background of the cards (masthead, sections, footer block).")
    link: str = setting("#1f5f8b", "Links.")
    dark_background: str = setting("#121212", "Background around the cards in dark mode.")
    dark_card: str = setting("#1e1e1e", "Background of the cards in dark mode.")
    dark_text: str = setting("#e8e8e8", "Text in dark mode.")
    dark_link: str = setting("#8cc8f0", "Links in dark mode.")


@dataclass
class UnsubscribeSettings:
    url: str = setting("https://example.org/unsubscribe?token={token}", "Unsubscribe link of every message (footer "
                       "and List-Unsubscribe); `{token}` is required and becomes the signed token.")
    mailto: str | None = setting(None, "Optional address for a mailto: entry in List-Unsubscribe.")
    web_version_url: str = setting("https://example.org/newsletter/{slug}.html", "The \"View in your browser\" "
                                   "link; `{slug}` becomes the issue's slug.")
    keys_env: str = setting("DIGEST_UNSUBSCRIBE_KEYS", "Name of the environment variable holding the unsubscribe "
                            "signing keys (`kid:secret` pairs, comma-separated; the first signs).")


@dataclass
class PathSettings:
    issues: str = setting("issues", "Folder of the issue files (<slug>.yaml).")
    templates: str = setting("templates", "Folder of the templates.")
    output: str = setting("out", "Where `digest build` writes (<slug>/) and the outbox folder lives.")
    state: str = setting(".digest", "Folder of the send ledger (ledger.sqlite3) and the locks.")
    subscribers: str = setting("subscribers.csv", "The subscriber list (CSV).")


@dataclass
class MergeSettings:
    defaults: dict = setting(doc="Value of a merge field for a subscriber who leaves it empty (field = text).",
                             factory=lambda: {"first_name": "friend", "name": "friend"})


@dataclass
class SendSettings:
    transport: str = setting("outbox", "How messages leave: outbox, smtp, postmark, sendgrid, mailgun or resend.")
    rate: float = setting(0.0, "Messages per second over the whole run; 0 = as fast as the transport takes them.")
    connections: int = setting(1, "Parallel connections (SMTP sessions or HTTP sessions), each in its own thread.")
    batch_size: int = setting(50, "Recipients claimed in the ledger and handed to the transport at a time "
                              "(capped by what the transport takes per call).")
    retries: int = setting(3, "In-run retries of deferred messages (exponential backoff with jitter).")
    retry_base_delay: float = setting(1.0, "First backoff delay in seconds; it doubles on each retry.")
    retry_max_delay: float = setting(60.0, "Longest backoff delay in seconds.")
    max_consecutive_failures: int = setting(25, "Stop (pause) the run, resumable, after this many failures in a row "
                                            "(refusals, and deferrals whose in-run retries are used up; a deferral "
                                            "the run still retries, e.g. greylisting, does not count); 0 = never.")
    test_subject_prefix: str = setting("[TEST] ", "Put before the subject of `digest send --test` messages.")
    bounce_address: str | None = setting(None, "Optional envelope sender (MAIL FROM / return path); default: the "
                                         "From address.")
    accept_warnings: list = setting(factory=list, doc="Codes of pre-send check warnings every issue may go out with "
                                    "(e.g. [\"list-invalid-rows\"]); errors can never be accepted. See `digest check`.")


# The headers every DKIM signature covers: RFC 8058 §4 wants List-Unsubscribe and
# List-Unsubscribe-Post signed for one-click unsubscribe to count.
DKIM_REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                         "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")


@dataclass
class DkimSettings:
    selector: str | None = setting(None, "DKIM selector of the key (its record is <selector>._domainkey.<domain>); "
                                   "unset = digest does not sign (a relay may). The RSA selector when algorithm "
                                   "is `both`.")
    domain: str | None = setting(None, "Signing domain (d=); default: the From domain (needed for DMARC alignment).")
    algorithm: str = setting("rsa-sha256", "rsa-sha256, ed25519-sha256, or both (two signatures: RSA with "
                             "`selector`/`key_file`, ed25519 with `ed25519_selector`/`ed25519_key_file`).")
    canonicalization: str = setting("relaxed/relaxed", "Header/body canonicalisation: relaxed or simple each, "
                                    "e.g. `relaxed/relaxed`.")
    headers: list = setting(factory=lambda: [*DKIM_REQUIRED_HEADERS, "Reply-To"],
                            doc="Headers the signature covers (h=); must include " + ", ".join(DKIM_REQUIRED_HEADERS)
                            + ". A listed header a message lacks is signed as absent (it cannot be added later).")
    oversign: list = setting(factory=lambda: ["From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"],
                             doc="Headers listed once more in h=, so that a second copy added on the way breaks the "
                             "signature.")
    key_file: str | None = setting(None, "Private key file (PEM; `digest dkim keygen` writes one). Never the key "
                                   "itself: it must not go in digest.toml. Refused if others can read it.")
    key_env: str = setting("DIGEST_DKIM_KEY", "Environment variable holding the private key (PEM text) when "
                           "key_file is not set.")
    ed25519_selector: str | None = setting(None, "Selector of the ed25519 key when algorithm is `both`.")
    ed25519_key_file: str | None = setting(None, "The ed25519 private key file when algorithm is `both`.")
    ed25519_key_env: str = setting("DIGEST_DKIM_ED25519_KEY", "Environment variable holding the ed25519 key "
                                   "when algorithm is `both` and ed25519_key_file is not set.")


@dataclass
class FeedbackSettings:
    """[feedback]: what comes back after a send (bounces, complaints, unsubscribes) and what digest does."""

    soft_bounce_limit: int = setting(3, "Suppress an address that soft-bounces (mailbox full, …) on this many "
                                     "consecutive sends; 0 = never. Hard bounces and complaints suppress at once.")
    max_complaint_rate: float = setting(0.3, "Percent: a send does not start while the previous send's spam "
                                        "complaint rate is above this (Gmail's bulk-sender limit is 0.3 %).")
    max_hard_bounce_rate: float = setting(2.0, "Percent: a send does not start while the previous send's hard-bounce "
                                          "rate is above this.")
    sync_before_send: bool = setting(False, "Run `digest suppress sync` for the send's transport before a real send "
                                     "starts (Postmark, SendGrid, Mailgun, Resend).")
    webhook_tolerance: int = setting(300, "Seconds a signed webhook's timestamp may differ from this machine's clock "
                                     "(SendGrid, Mailgun, Resend); older requests are refused as replays.")
    ses_topics: list = setting(factory=list, doc="SNS topic ARNs whose messages /webhooks/ses accepts (e.g. "
                               "[\"arn:aws:sns:eu-west-1:123456789012:digest-feedback\"]); empty = none.")
    resend_audience: str | None = setting(None, "Optional Resend audience id: `digest suppress sync` reads its "
                                          "contacts' unsubscribes (default: every contact).")
    imap_host: str | None = setting(None, "The IMAP server of the [send] bounce_address mailbox (`digest bounces "
                                    "fetch`); TLS on imap_port, the certificate verified.")
    imap_port: int = setting(993, "Port of the IMAP server (implicit TLS).")
    imap_user: str | None = setting(None, "IMAP login (default: [send] bounce_address).")
    imap_password_env: str = setting("DIGEST_IMAP_PASSWORD", "Name of the environment variable holding the IMAP "
                                     "password (never put it in digest.toml).")
    imap_folder: str = setting("INBOX", "The folder bounce messages arrive in.")
    imap_done_folder: str = setting("digest-processed", "Where `digest bounces fetch` moves the messages it handled "
                                    "(created when missing; nothing is deleted).")
    imap_ca_file: str | None = setting(None, "Optional CA bundle (PEM) to verify the IMAP server with, instead of the "
                                       "system's (a private CA or a self-signed certificate); relative to "
                                       "digest.toml's folder. Verification cannot be switched off.")


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSettings,
    "colors": ColorSettings,
    "unsubscribe": UnsubscribeSettings,
    "paths": PathSettings,
    "merge": MergeSettings,
    "send": SendSettings,
    "feedback": FeedbackSettings,
    "dkim": DkimSettings,
}

# Transport sections are validated by the transport itself (it owns its dataclass); config only
# knows their names so that a misspelt section is still an error (a test keeps them equal to the
# transport registry's names).
TRANSPORT_SECTIONS = ("outbox", "smtp", "postmark", "sendgrid", "mailgun", "resend")


def toml_literal(value: Any) -> str:
    """A value as TOML writes it (strings as basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def default_of(f: dataclasses.Field) -> Any:
    """A settings field's default value (None when it has none)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None
