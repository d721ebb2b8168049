"""Rendered issue + Subscriber → that subscriber's OutgoingMessage, by cheap slot substitution."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol

from digest.addresses import address_key
from digest.compose.slots import UnsafeLink, split_slot, url_value
from digest.errors import ConfigError, MergeError
from digest.newsletter import newsletter_identity
from digest.outgoing import OutgoingMessage
from digest.text import field_key, header_safe

if TYPE_CHECKING:  # pragma: no cover
    from digest.audience.subscribers import Subscriber
    from digest.compose.render import Rendered
    from digest.config import Settings

# Values computed per recipient by digest itself; every other field comes from the list.
COMPUTED_FIELDS = frozenset({"unsubscribe_url", "web_version_url", "email"})


class Signer(Protocol):
    def sign(self, newsletter_id: str, email: str) -> str: ...


def _escape_html(value: str) -> str:
    return html.escape(value, quote=True)


class Personalizer:
    """Fills one rendered issue for many subscribers; everything per-issue is prepared here once."""

    def __init__(self, rendered: "Rendered", settings: "Settings", signer: Signer, *,
                 subject_prefix: str = "", source: Path | str | None = None):
        self.rendered = rendered
        self.settings = settings
        self.signer = signer
        self.subject_prefix = subject_prefix
        self.source = str(source) if source else "subscriber list"
        identity = newsletter_identity(settings)
        self.from_addr = identity.from_addr
        self.from_email = identity.from_email
        self.domain = identity.domain
        self.envelope_from = identity.envelope_from
        self.reply_to = identity.reply_to
        self.newsletter_id = identity.newsletter_id
        self.list_id = identity.list_id
        self.unsubscribe_template = settings.unsubscribe.url
        if "{token}" not in self.unsubscribe_template:
            raise ConfigError(f"{settings.where('unsubscribe')} url = {self.unsubscribe_template!r} has no {{token}}.",
                              "the unsubscribe URL must carry the signed token, e.g. https://…/unsubscribe?token={token}")
        self.web_version_url = settings.unsubscribe.web_version_url.format(slug=rendered.slug)
        self.mailto = settings.unsubscribe.mailto
        self.defaults: Mapping[str, str] = {field_key(k): v for k, v in settings.merge.defaults.items()}
        # slot name → (field, inline default): `{{ first_name | default("there") }}` has its own slot
        self.slots = {name: split_slot(name) for name in rendered.fields}
        self.needed = frozenset(name for name, (field, _) in self.slots.items() if field not in COMPUTED_FIELDS)
        self.slug = rendered.slug

    def unsubscribe_url(self, email: str) -> str:
        """The signed one-click unsubscribe link for one address."""
        token = self.signer.sign(self.newsletter_id, email)
        return self.unsubscribe_template.format(token=token, slug=self.slug)

    def _value(self, name: str, sub: "Subscriber") -> str | None:
        """A list column's value for one slot: the column, else the inline default, else [merge] defaults."""
        field, inline = self.slots[name]
        value = sub.fields.get(field, "")
        if value:
            return value
        return inline if inline is not None else self.defaults.get(field)

    def values_for(self, sub: "Subscriber") -> dict[str, str]:
        """Merge values for one subscriber: list columns, then the field's default for empty ones."""
        computed = {"email": sub.email, "unsubscribe_url": self.unsubscribe_url(sub.email),
                    "web_version_url": self.web_version_url}
        values: dict[str, str] = dict(computed)
        for name, (field, _) in self.slots.items():
            if field in COMPUTED_FIELDS:
                values[name] = computed[field]
                continue
            value = self._value(name, sub)
            if value is None:
                raise MergeError(
                    f"{self.source}:{sub.line}: {sub.email} has no value for the merge field '{field}' "
                    "used by the issue, and it has no default.",
                    f"fill the '{field}' column, write {{{{ {field} | default(\"…\") }}}} in the issue, "
                    f"or add {field} = \"…\" to [merge] defaults in digest.toml",
                )
            values[name] = value
        return values

    def check(self, sub: "Subscriber") -> None:
        """Raise MergeError if the issue uses a field this subscriber lacks and that has no default,
        or one that begins a link with something other than an http(s) or mailto URL."""
        for name in self.needed:
            if self._value(name, sub) is None:
                self.values_for(sub)  # raises with the full message
        for name in self.rendered.html.link_fields & self.needed:
            try:
                url_value(self._value(name, sub) or "", "link", name)
            except UnsafeLink as exc:
                raise self._unsafe(exc, sub) from None

    def _unsafe(self, exc: UnsafeLink, sub: "Subscriber | None") -> MergeError:
        field, _ = self.slots.get(exc.field, (exc.field, None))
        who = f"{self.source}:{sub.line}: {sub.email}: " if sub is not None else f"{self.source}: "
        return MergeError(f"{who}the merge field '{field}' begins a link, but {exc.value.strip()[:80]!r} is not "
                          "an http(s):// or mailto: address.", f"fix the '{field}' column (a link such as "
                          "https://…); links to javascript:, data: or files are never sent")

    def _html(self, values: Mapping[str, str], sub: "Subscriber | None") -> str:
        try:
            return self.rendered.html.fill(values, _escape_html)
        except UnsafeLink as exc:
            raise self._unsafe(exc, sub) from None

    def sample_reader(self, email: str = "reader@example.org") -> "Subscriber":
        """A made-up reader for a look at the message (`digest build`, --test to someone not on the list):
        the example reader's name, and "[field]" for each other field the issue uses without a default."""
        from digest.audience.lookup import example_subscriber
        from digest.audience.subscribers import Subscriber

        example = example_subscriber()
        fields = {**example.fields, "email": email}
        for field, inline in self.slots.values():
            if field not in fields and field not in COMPUTED_FIELDS and inline is None and field not in self.defaults:
                fields[field] = f"[{field}]"
        return Subscriber(email=email, name=example.name, fields=fields, tags=frozenset(), line=0)

    def message_id(self, email: str) -> str:
        """Stable per (issue, recipient): a re-sent in-flight message keeps its Message-ID."""
        h = hashlib.sha256(f"{self.newsletter_id}\0{self.slug}\0{address_key(email)}".encode()).hexdigest()[:24]
        return f"<{self.slug}.{h}@{self.domain}>"

    def headers_for(self, unsubscribe_url: str) -> tuple[tuple[str, str], ...]:
        """List-Id and the RFC 2369 / RFC 8058 unsubscribe headers."""
        targets = [f"<{unsubscribe_url}>"]
        if self.mailto:
            targets.append(f"<mailto:{self.mailto}?subject=unsubscribe>")
        headers = [("List-Id", self.list_id), ("List-Unsubscribe", ", ".join(targets))]
        if unsubscribe_url.startswith("https://"):
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return tuple(headers)

    def message_for(self, sub: "Subscriber", recipient_id: int) -> OutgoingMessage:
        """This subscriber's message: subject, html and text filled, headers set, MIME not yet built."""
        values = self.values_for(sub)
        r = self.rendered
        # Only the subject's fields go into a header; the html/text fills keep the values as they are.
        header_values = {k: header_safe(values[k]) for k in r.subject.fields}
        return OutgoingMessage(
            recipient_id=recipient_id,
            to_email=header_safe(sub.email),
            to_name=header_safe(sub.name),
            from_addr=self.from_addr,
            envelope_from=self.envelope_from,
            reply_to=self.reply_to,
            subject=self.subject_prefix + r.subject.fill(header_values),
            html=self._html(values, sub),
            text=r.text.fill(values),
            message_id=self.message_id(sub.email),
            headers=self.headers_for(values["unsubscribe_url"]),
        )

    def web_version(self, example_values: Mapping[str, str] | None = None) -> tuple[str, str]:
        """(html, text) of the public web version: defaults for merge fields, the generic unsubscribe page."""
        values = {}
        for name in self.needed:
            field, inline = self.slots[name]
            values[name] = inline if inline is not None else self.defaults.get(field, "")
        values.update(example_values or {})
        values.setdefault("email", "you")
        values.setdefault("unsubscribe_url", self.unsubscribe_template.split("?")[0])
        values.setdefault("web_version_url", self.web_version_url)
        for name, (field, _) in self.slots.items():
            if field in COMPUTED_FIELDS:
                values.setdefault(name, values[field])
        return self._html(values, None), self.rendered.text.fill(values)
