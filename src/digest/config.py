"""digest.toml + environment variables → a validated, typed Settings object."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

CONFIG_FILENAME = "digest.toml"
ENV_PREFIX = "DIGEST_"


@dataclass
class NewsletterSettings:
    name: str = "My Newsletter"
    from_: str = "My Newsletter <newsletter@example.org>"
    reply_to: str | None = None
    postal_address: str = "Example Organisation, 1 Example Street, 1000 AA Example City"
    website: str = "https://example.org"
    logo: str | None = None
    assets_url: str = "https://example.org/newsletter/"  # where relative image paths are published
    language: str = "en"
    template: str = "newsletter"
    why: str = "You are receiving this because you subscribed to our newsletter."
    list_id: str | None = None  # defaults to a slug of the name on the From domain


@dataclass
class ColorSettings:
    brand: str = "#1f5f8b"
    accent: str = "#f2c200"
    text: str = "#222222"
    background: str = "#f3f3f0"
    card: str = "#ffffff"
    link: str = "#1f5f8b"
    dark_background: str = "#121212"
    dark_card: str = "#1e1e1e"
    dark_text: str = "#e8e8e8"
    dark_link: str = "#8cc8f0"


@dataclass
class UnsubscribeSettings:
    url: str = "https://example.org/unsubscribe?token={token}"
    mailto: str | None = None
    web_version_url: str = "https://example.org/newsletter/{slug}.html"
    keys_env: str = "DIGEST_UNSUBSCRIBE_KEYS"


@dataclass
class PathSettings:
    issues: str = "issues"
    templates: str = "templates"
    output: str = "out"
    state: str = ".digest"
    subscribers: str = "subscribers.csv"


@dataclass
class MergeSettings:
    defaults: dict = field(default_factory=lambda: {"first_name": "friend", "name": "friend"})


@dataclass
class SendSettings:
    transport: str = "outbox"
    rate: float = 0.0  # messages per second over the whole run; 0 = as fast as the transport takes them
    connections: int = 1
    batch_size: int = 50
    retries: int = 3
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    max_consecutive_failures: int = 25
    test_subject_prefix: str = "[TEST] "
    bounce_address: str | None = None


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSettings,
    "colors": ColorSettings,
    "unsubscribe": UnsubscribeSettings,
    "paths": PathSettings,
    "merge": MergeSettings,
    "send": SendSettings,
}

# Transport sections are validated by the transport itself (it owns its dataclass); config only
# knows their names so that a misspelt section is still an error.
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


def _py_name(key: str) -> str:
    return key + "_" if key in ("from",) else key


def _toml_name(field_name: str) -> str:
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
    fields = {_toml_name(f.name): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields and isinstance(value, EnvValue):
            continue  # e.g. DIGEST_SMTP_PASSWORD is the secret itself, not a setting
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
            key = _toml_name(f.name)
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
    # Transport sections belong to their transport modules (not imported here): keep the text and
    # let load_section convert it to the field's type, so DIGEST_SMTP_HOST=… works like the rest.
    for section in TRANSPORT_SECTIONS:
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        for var, text in env.items():
            if var.startswith(prefix):
                value = EnvValue(text)
                value.var = var
                raw.setdefault(section, {})[var[len(prefix):].lower()] = value


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
