"""The HTTP API of ``blockpilot serve``: :func:`create_app` builds it, :func:`serve` runs it."""

from blockpilot.api.app import API_PREFIX, create_app
from blockpilot.api.server import serve

__all__ = ["API_PREFIX", "create_app", "serve"]
