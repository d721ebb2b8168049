"""A route module for the app's own tests: one page, one POST, one handler that fails."""

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

ROUTES = [Rule("/hello/<name>", endpoint="hello", methods=["GET"]),
          Rule("/echo", endpoint="echo", methods=["POST"]),
          Rule("/boom", endpoint="boom")]


def hello(app, request, name):
    return Response(f"hello {name} from {app.settings.newsletter.name}")


def echo(app, request):
    return Response(request.get_data())


def boom(app, request):
    raise RuntimeError("secret detail that must not reach the reader")
