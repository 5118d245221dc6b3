"""The HTTP API of ``blockpilot serve``: :func:`create_app` builds it, :func:`serve` runs it."""

from blockpilot.api.app import create_app
from blockpilot.api.routes import API_PREFIX
from blockpilot.api.server import serve

__all__ = ["API_PREFIX", "create_app", "serve"]
