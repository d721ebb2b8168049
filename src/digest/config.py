"""digest.toml + environment variables → a validated, typed Settings object."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.sections import (
    SECTIONS,
    TRANSPORT_SECTIONS,
    ColorSettings,
    DkimSettings,
    FeedbackSettings,
    MergeSettings,
    NewsletterSettings,
    PathSettings,
    SendSettings,
    UnsubscribeSettings,
)

CONFIG_FILENAME = "digest.toml"
ENV_PREFIX = "DIGEST_"


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
