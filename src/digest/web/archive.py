"""The published archive (`digest publish`) served by the same app, so one process answers every URL
in an email: the issues' web versions, their images, the index and the feed.

Files come from the site folder as it is at each request (publish swaps it in one rename), with
werkzeug's safe path joining; names starting with a dot (publish's own bookkeeping) are never served.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from digest.web.app import text_response

ROUTES = [Rule("/", endpoint="archive", methods=["GET"], defaults={"path": ""}),
          Rule("/<path:path>", endpoint="archive", methods=["GET"])]

# Images carry their content's hash in the name: a year in caches is safe. Pages change on republish.
HASHED_MAX_AGE = 365 * 24 * 3600
PAGE_MAX_AGE = 300


def site_folder(app) -> Path:
    """The folder being served: `digest serve --archive`, else where `digest publish` writes."""
    from digest.publish.layout import site_dir

    return getattr(app, "archive_dir", None) or site_dir(app.settings)


def archive(app, request: Request, path: str) -> Response:
    """A file of the published site; a folder's index.html; 404 for anything else."""
    parts = PurePosixPath(path).parts
    if any(part.startswith(".") for part in parts):
        return text_response("Not found", 404)
    if not path or path.endswith("/"):
        path += "index.html"
    folder = site_folder(app)
    try:
        response = send_from_directory(folder, path, request.environ, max_age=_max_age(path))
    except NotFound:
        if parts and (folder / path).is_dir():
            # /slug → slug/: the page's images are relative to its folder. A relative Location, so
            # the redirect stays right behind a proxy that serves the archive under a path prefix.
            response = Response(status=308, headers={"Location": f"{parts[-1]}/"})
            response.autocorrect_location_header = False
            return response
        return text_response("Not found", 404)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _max_age(path: str) -> int:
    name = PurePosixPath(path).name
    stem_parts = name.split(".")
    hashed = len(stem_parts) >= 3 and len(stem_parts[-2]) == 10 and all(c in "0123456789abcdef" for c in stem_parts[-2])
    return HASHED_MAX_AGE if hashed else PAGE_MAX_AGE
