"""digest.toml + environment variables → a validated, typed Settings object."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import textwrap
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

CONFIG_FILENAME = "digest.toml"
ENV_PREFIX = "DIGEST_"


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


@dataclass
class Settings:
    """Every non-secret setting, plus where the project lives."""

    root: Path
    config_path: Path | None
    newsletter: NewsletterSettings
    colors: ColorSettings
    unsubscribe: UnsubscribeSettings
    paths: PathSettings
    merge: MergeSettings
    send: SendSettings
    feedback: FeedbackSettings
    dkim: DkimSettings
    transports: dict[str, dict[str, Any]]

    def path(self, name: str) -> Path:
        """Absolute path of one of the [paths] settings, relative to the project root."""
        p = Path(getattr(self.paths, name)).expanduser()
        return p if p.is_absolute() else self.root / p

    def transport_section(self, name: str) -> dict[str, Any]:
        """The raw [name] table for a transport (empty when absent)."""
        return dict(self.transports.get(name, {}))

    def where(self, section: str) -> str:
        """How to name a section in an error message."""
        src = self.config_path.name if self.config_path else "built-in defaults"
        return f"{src} [{section}]"


def toml_name(field_name: str) -> str:
    """A settings field's key in digest.toml: `from_` is written `from`."""
    return field_name[:-1] if field_name.endswith("_") else field_name


class EnvValue(str):
    """A setting given as text in an environment variable; converted to the field's type on load."""

    var: str = ""


def _from_env_text(value: "EnvValue", annotation: Any) -> Any:
    base = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = base[0]
    try:
        if kind is bool:
            return value.strip().lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise ConfigError(f"environment variable {value.var}={str(value)!r}: expected {_type_label(kind)}.")
    return str(value)


def _type_ok(value: Any, annotation: Any) -> tuple[bool, Any]:
    """Check (and gently coerce, int → float) a TOML value against a dataclass annotation."""
    if isinstance(value, EnvValue):
        value = _from_env_text(value, annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is type(None) and value is None:
                return True, None
            ok, v = _type_ok(value, arg)
            if ok:
                return True, v
        return False, value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    if annotation is int and isinstance(value, bool):
        return False, value
    if annotation in (dict, list, str, int, bool, float):
        return isinstance(value, annotation), value
    if origin in (dict, list):
        return isinstance(value, origin), value
    return True, value


def _type_label(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return " or ".join(_type_label(a) for a in args) + " (optional)"
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            dict: "a table", list: "a list"}.get(annotation, str(annotation))


def load_section(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a TOML table; unknown keys and wrong types are ConfigErrors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of settings, not {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {toml_name(f.name): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            guess = difflib.get_close_matches(key, list(fields), n=1)
            did = f" Did you mean '{guess[0]}'?" if guess else ""
            raise ConfigError(
                f"{where}: unknown setting '{key}'.{did}",
                f"allowed keys: {', '.join(sorted(fields))}",
            )
        f = fields[key]
        ok, coerced = _type_ok(value, hints[f.name])
        if not ok:
            raise ConfigError(
                f"{where} {key} = {value!r}: expected {_type_label(hints[f.name])}, got {type(value).__name__}."
            )
        kwargs[f.name] = coerced
    return cls(**kwargs)


def _apply_env(raw: dict[str, dict[str, Any]], env: typing.Mapping[str, str]) -> None:
    """DIGEST_<SECTION>_<KEY>=value overrides a scalar setting (environment beats the file)."""
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = toml_name(f.name)
            var = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if var not in env:
                continue
            text = env[var]
            ann = hints[f.name]
            base = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
            kind = base[0]
            try:
                if kind is bool:
                    value: Any = text.strip().lower() in ("1", "true", "yes", "on")
                elif kind is int:
                    value = int(text)
                elif kind is float:
                    value = float(text)
                elif kind is str:
                    value = text
                else:
                    continue
            except ValueError:
                raise ConfigError(f"environment variable {var}={text!r}: expected {_type_label(kind)}.")
            raw.setdefault(section, {})[key] = value
    _apply_transport_env(raw, env)


def _apply_transport_env(raw: dict[str, dict[str, Any]], env: typing.Mapping[str, str]) -> None:
    """DIGEST_<TRANSPORT>_<KEY>=value for the transport sections (only keys that are their settings)."""
    # Transport sections belong to their transport modules: keep the text and let load_section
    # convert it to the field's type, so DIGEST_SMTP_HOST=… works like the rest. Only a variable
    # that names a setting is kept: DIGEST_SMTP_PASSWORD is a secret the transport reads itself
    # (config.secret), and a secret never sits in the settings.
    for section in TRANSPORT_SECTIONS:
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        given = {var[len(prefix):].lower(): var for var in env if var.startswith(prefix)}
        if not given:
            continue
        for key in given.keys() & _transport_keys(section):
            value = EnvValue(env[given[key]])
            value.var = given[key]
            raw.setdefault(section, {})[key] = value


def _transport_keys(section: str) -> set[str]:
    """The digest.toml keys of a transport's section (its module is imported only now, when asked)."""
    from digest.transports import transport_class

    cls = transport_class(section).settings_class
    return {toml_name(f.name) for f in dataclasses.fields(cls)} if cls is not None else set()


def find_config(start: Path | None = None) -> Path | None:
    """digest.toml in the current folder or the nearest parent folder, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def _read_toml(config_path: Path) -> dict[str, Any]:
    """The parsed settings file; a missing file or bad TOML is a ConfigError naming it."""
    if not config_path.is_file():
        raise ConfigError(f"settings file {config_path} does not exist.",
                          "create it (`digest init` writes one with every setting) or drop --config")
    try:
        return tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}.", "fix the line it names") from None


def _check_section_names(raw: dict[str, Any], where: str) -> None:
    """Every top-level table must be a known section (a misspelt one would be ignored otherwise)."""
    allowed = sorted([*SECTIONS, *TRANSPORT_SECTIONS])
    for key in raw:
        if key not in SECTIONS and key not in TRANSPORT_SECTIONS:
            guess = difflib.get_close_matches(key, allowed, n=1)
            did = f" Did you mean [{guess[0]}]?" if guess else ""
            raise ConfigError(f"{where}: unknown section [{key}].{did}", f"allowed sections: {', '.join(allowed)}")


def _check_values(loaded: dict[str, Any], transports: dict[str, Any], where: str) -> None:
    """Checks that span a field's type: merge defaults are text, [send] numbers are in range."""
    for name, table in transports.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where} [{name}] must be a table of settings.")
    for k, v in loaded["merge"].defaults.items():
        if not isinstance(v, str):
            raise ConfigError(f"{where} [merge] defaults.{k} = {v!r}: expected a string.")
    send = loaded["send"]
    if send.rate < 0 or send.connections < 1 or send.batch_size < 1:
        raise ConfigError(f"{where} [send]: rate must be ≥ 0, connections and batch_size ≥ 1.")


def load_settings(path: Path | str | None = None, env: typing.Mapping[str, str] | None = None) -> Settings:
    """Load settings: explicit path, else $DIGEST_CONFIG, else the nearest digest.toml, else defaults."""
    env = os.environ if env is None else env
    if path is None and env.get("DIGEST_CONFIG"):
        path = env["DIGEST_CONFIG"]
    config_path = Path(path).resolve() if path else find_config()
    raw = _read_toml(config_path) if config_path is not None else {}
    root = config_path.parent if config_path else Path.cwd().resolve()
    _check_section_names(raw, config_path.name if config_path else "settings")
    _apply_env(raw, env)
    where = config_path.name if config_path else "built-in defaults"
    loaded = {name: load_section(cls, raw.get(name, {}), f"{where} [{name}]") for name, cls in SECTIONS.items()}
    transports = {name: raw[name] for name in TRANSPORT_SECTIONS if name in raw}
    _check_values(loaded, transports, where)
    return Settings(root=root, config_path=config_path, transports=transports, **loaded)


def secret(name: str, env: typing.Mapping[str, str] | None = None, *, purpose: str) -> str:
    """Read a secret from the environment; a missing one is a ConfigError naming the variable."""
    env = os.environ if env is None else env
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({purpose}).",
                          f"export {name}=… before running digest; secrets never go in digest.toml")
    return value


# --- writing a settings file ----------------------------------------------------------------------

def _toml_literal(value: Any) -> str:
    """A value as TOML writes it (strings as basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def settings_toml(sections: list[tuple[str, type, bool]], values: typing.Mapping[tuple[str, str], Any]) -> str:
    """digest.toml text listing every setting of `sections` with its description and default.

    `sections` holds (name, dataclass, whole section commented out); `values` maps
    (section, key) to a value written as an active line. Every other key is a commented-out line
    showing its default, so the file documents itself and loads to the same settings.
    """
    out: list[str] = []
    for name, cls, commented in sections:
        prefix = "# " if commented else ""
        out += ["", f"{prefix}[{name}]"]
        for f in dataclasses.fields(cls):
            key = toml_name(f.name)
            doc = f.metadata.get("doc", "")
            out += [f"# {line}" for line in textwrap.wrap(doc, 96)]
            if (name, key) in values:
                out.append(f"{prefix}{key} = {_toml_literal(values[(name, key)])}")
                continue
            default = _default_of(f)
            out.append(f"# {key} = {_toml_literal(default)}" if default is not None else f"# {key} =   (not set)")
    return "\n".join(out).lstrip("\n") + "\n"
