"""The preview's secret: a random token kept in the state folder (0600), made on first use.

Kept rather than made anew for each run, so that a tab left open across a restart of `digest
preview` carries on; it guards the list no more and no less than the state folder itself, whose
ledger holds every column of it.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from digest.filemodes import open_private, private_folder

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

TOKEN_FILENAME = "preview-token"


def preview_token(settings: "Settings") -> str:
    """This project's preview token; a token for this run only when the state folder cannot hold one."""
    path = settings.path("state") / TOKEN_FILENAME
    try:
        private_folder(path.parent)
        fd = open_private(path)
        with os.fdopen(fd, "r+", encoding="ascii") as fh:
            token = fh.read().strip()
            if len(token) < 32:  # new (or spoilt): write one; two previews starting at once may both
                token = secrets.token_urlsafe(32)  # do, and the second one's stands for both next time
                fh.seek(0)
                fh.truncate()
                fh.write(token + "\n")
        return token
    except (OSError, UnicodeDecodeError):
        return secrets.token_urlsafe(32)
