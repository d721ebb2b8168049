"""The reader-facing pages: small, accessible HTML in the newsletter's colours and language.

No script, no external file, no cookie: one inline stylesheet and, where there is something to do,
one form whose button POSTs to the page's own URL (a form without `action` posts to the address it
was loaded from, token included, so the pages work behind any path prefix a reverse proxy adds).
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import TYPE_CHECKING

import jinja2
from werkzeug.wrappers import Response

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

# The texts of each page, by language (`[newsletter] language`; its first part, 'nl' for 'nl-BE').
# English is the fallback for a language not listed here.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "ask_title": "Unsubscribe from {name}?",
        "ask_body": "{email} will no longer receive {name}.",
        "ask_button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_body": "{email} will no longer receive {name}. It can take a few minutes for a send already "
                     "under way to notice.",
        "undo_button": "I clicked by mistake — resubscribe",
        "back_title": "You are subscribed again",
        "back_body": "{email} will receive {name} again.",
        "kept_title": "We could not resubscribe this address here",
        "kept_body": "Mail to {email} could not be delivered or was reported, so it stays off the list. "
                     "Write to {contact} and we will sort it out.",
        "bad_title": "This unsubscribe link does not work",
        "bad_body": "The link is incomplete or was changed. Copy the whole link from the email (some mail "
                    "programs split long links), or write to {contact} and we will unsubscribe you.",
        "none_title": "Unsubscribe from {name}",
        "none_body": "Use the unsubscribe link at the bottom of the email you received, or write to {contact}.",
    },
    "nl": {
        "ask_title": "Afmelden voor {name}?",
        "ask_body": "{email} ontvangt {name} dan niet meer.",
        "ask_button": "Afmelden",
        "done_title": "Je bent afgemeld",
        "done_body": "{email} ontvangt {name} niet meer. Een verzending die al bezig is, merkt het binnen "
                     "enkele minuten op.",
        "undo_button": "Per ongeluk geklikt — weer aanmelden",
        "back_title": "Je bent weer aangemeld",
        "back_body": "{email} ontvangt {name} weer.",
        "kept_title": "We kunnen dit adres hier niet weer aanmelden",
        "kept_body": "Mail aan {email} kwam niet aan of werd gemeld, dus het blijft van de lijst af. "
                     "Schrijf naar {contact}, dan lossen we het op.",
        "bad_title": "Deze afmeldlink werkt niet",
        "bad_body": "De link is onvolledig of veranderd. Kopieer de hele link uit de e-mail (sommige "
                    "mailprogramma's breken lange links af), of schrijf naar {contact}, dan melden wij je af.",
        "none_title": "Afmelden voor {name}",
        "none_body": "Gebruik de afmeldlink onderaan de e-mail die je kreeg, of schrijf naar {contact}.",
    },
    "de": {
        "ask_title": "{name} abbestellen?",
        "ask_body": "{email} erhält {name} dann nicht mehr.",
        "ask_button": "Abbestellen",
        "done_title": "Sie haben abbestellt",
        "done_body": "{email} erhält {name} nicht mehr. Ein Versand, der schon läuft, bemerkt es in wenigen "
                     "Minuten.",
        "undo_button": "Versehentlich geklickt — wieder anmelden",
        "back_title": "Sie sind wieder angemeldet",
        "back_body": "{email} erhält {name} wieder.",
        "kept_title": "Diese Adresse lässt sich hier nicht wieder anmelden",
        "kept_body": "Post an {email} kam nicht an oder wurde gemeldet, daher bleibt sie von der Liste. "
                     "Schreiben Sie an {contact}, wir klären es.",
        "bad_title": "Dieser Abmeldelink funktioniert nicht",
        "bad_body": "Der Link ist unvollständig oder verändert. Kopieren Sie den ganzen Link aus der E-Mail "
                    "oder schreiben Sie an {contact}, dann melden wir Sie ab.",
        "none_title": "{name} abbestellen",
        "none_body": "Nutzen Sie den Abmeldelink unten in der E-Mail oder schreiben Sie an {contact}.",
    },
    "fr": {
        "ask_title": "Se désabonner de {name} ?",
        "ask_body": "{email} ne recevra plus {name}.",
        "ask_button": "Se désabonner",
        "done_title": "Vous êtes désabonné",
        "done_body": "{email} ne recevra plus {name}. Un envoi déjà en cours le remarque en quelques minutes.",
        "undo_button": "J'ai cliqué par erreur — me réabonner",
        "back_title": "Vous êtes de nouveau abonné",
        "back_body": "{email} recevra de nouveau {name}.",
        "kept_title": "Nous ne pouvons pas réabonner cette adresse ici",
        "kept_body": "Le courrier à {email} n'a pas pu être remis ou a été signalé : elle reste hors de la "
                     "liste. Écrivez à {contact}, nous réglerons cela.",
        "bad_title": "Ce lien de désabonnement ne fonctionne pas",
        "bad_body": "Le lien est incomplet ou a été modifié. Copiez le lien entier depuis l'e-mail, ou "
                    "écrivez à {contact} et nous vous désabonnerons.",
        "none_title": "Se désabonner de {name}",
        "none_body": "Utilisez le lien de désabonnement en bas de l'e-mail reçu, ou écrivez à {contact}.",
    },
}

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }} · {{ name }}</title>
<style>
  body { margin: 0; background: {{ c.background }}; color: {{ c.text }};
         font: 17px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
  main { max-width: 34rem; margin: 3rem auto; padding: 2rem; background: {{ c.card }}; border-radius: 8px;
         border-top: 6px solid {{ c.accent }}; }
  h1 { color: {{ c.brand }}; font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
  p { margin: 0 0 1.25rem; }
  a { color: {{ c.link }}; }
  button { font: inherit; font-weight: 600; color: #fff; background: {{ c.brand }}; border: 0;
           border-radius: 6px; padding: .75rem 1.25rem; min-height: 44px; cursor: pointer; }
  button.quiet { color: {{ c.brand }}; background: transparent; border: 2px solid {{ c.brand }}; }
  button:focus-visible { outline: 3px solid {{ c.accent }}; outline-offset: 2px; }
  .from { font-size: .9rem; opacity: .8; margin: 1.5rem 0 0; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p role="status">{{ body }}</p>
{% if button %}<form method="post">
<input type="hidden" name="action" value="{{ action }}">
<button type="submit"{% if quiet %} class="quiet"{% endif %}>{{ button }}</button>
</form>{% endif %}
<p class="from"><a href="{{ website }}" rel="noreferrer">{{ name }}</a></p>
</main>
</body>
</html>
""")

# Nothing on these pages may be cached or framed, and the token in the address must not travel on
# in a Referer header when the reader follows the newsletter's link.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def texts_for(language: str) -> dict[str, str]:
    """The page texts in the newsletter's language (English when it has none)."""
    return TEXTS.get(language.split("-")[0].lower(), TEXTS["en"])


def contact_address(settings: "Settings") -> str:
    """Where a reader writes when a page cannot help: the unsubscribe mailbox, Reply-To, else From."""
    nl = settings.newsletter
    return settings.unsubscribe.mailto or parseaddr(nl.reply_to or "")[1] or parseaddr(nl.from_)[1]


def page(settings: "Settings", kind: str, status: int = 200, *, email: str = "", action: str | None = None,
         button: str | None = None, quiet: bool = False) -> Response:
    """One page: `kind` picks its title and text ('ask', 'done', 'back', 'kept', 'bad', 'none')."""
    nl = settings.newsletter
    words = texts_for(nl.language)
    fill = {"name": nl.name, "email": email, "contact": contact_address(settings)}
    html = _PAGE.render(lang=nl.language, name=nl.name, website=nl.website, c=settings.colors,
                        title=words[f"{kind}_title"].format(**fill), body=words[f"{kind}_body"].format(**fill),
                        button=words[button] if button else None, action=action, quiet=quiet)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(SECURITY_HEADERS)
    return response
