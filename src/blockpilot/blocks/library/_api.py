"""Shared plumbing of the provider blocks (docs/blocks-catalogue.md).

One JSON request to a provider's API through the guarded client, its base URL overridable by
``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``, and its failures as typed errors: HTTP 429 becomes
:class:`UpstreamRateLimitedError` (with ``retry_after``), any other refusal
:class:`UpstreamAPIError` carrying the provider's own words. Helpers to trim what a model sees
live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from blockpilot.errors import UpstreamAPIError, UpstreamRateLimitedError
from blockpilot.executions.context import ExecutionContext
from blockpilot.net.client import GuardedResponse

MAX_DETAIL_CHARS = 300
DEFAULT_RETRY_AFTER = 30.0


def trim(text: Any, limit: int) -> str:
    """*text* as a string of at most *limit* characters (an ellipsis marks a cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"


def _default_detail(payload: Any) -> str:
    """The error words of the common JSON shapes (``message``, ``error``, ``description``)."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("type") or "")
        for key in ("message", "description", "error", "detail"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    if isinstance(payload, str):
        return payload
    return ""


def retry_after_seconds(response: GuardedResponse, payload: Any = None) -> float:
    """Seconds to wait from ``Retry-After`` or a JSON ``retry_after`` (Discord, Telegram)."""
    header = response.headers.get("retry-after", "")
    try:
        return max(1.0, float(header))
    except ValueError:
        pass
    if isinstance(payload, dict):
        for holder in (payload, payload.get("parameters")):
            value = holder.get("retry_after") if isinstance(holder, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return max(1.0, float(value))
    return DEFAULT_RETRY_AFTER


@dataclass(frozen=True, slots=True)
class ProviderAPI:
    """A provider's HTTP API as the blocks call it.

    Attributes:
        provider: The credentials provider name (``slack``); also names the base URL
            override ``BLOCKPILOT_PROVIDER_SLACK_BASE_URL``.
        display: The provider's name for people (``Slack``).
        default_base: The real API base URL.
        detail: Reads the provider's error words from a parsed error body.
    """

    provider: str
    display: str
    default_base: str
    detail: Callable[[Any], str] = _default_detail

    def base(self, context: ExecutionContext) -> str:
        return (context.provider_base_url(self.provider) or self.default_base).rstrip("/")

    def error(self, response: GuardedResponse, payload: Any) -> UpstreamAPIError:
        """The typed error for a refused request (429: rate limited)."""
        words = trim(" ".join(self.detail(payload).split()), MAX_DETAIL_CHARS)
        status = response.status_code
        suffix = f": {words}" if words else ""
        if status == 429:
            wait = retry_after_seconds(response, payload)
            return UpstreamRateLimitedError(
                f"{self.display} rate limit reached (HTTP 429){suffix}; "
                f"retry after {wait:g} seconds",
                retry_after=wait,
                details={"provider": self.provider, "status": status, "retry_after": wait},
            )
        hint = ""
        if status == 401:
            hint = f"; the {self.display} credential was refused, reconnect or replace it"
        elif status == 403:
            hint = f"; the {self.display} credential lacks access to this resource"
        return UpstreamAPIError(
            f"{self.display} API returned HTTP {status}{suffix}{hint}",
            details={"provider": self.provider, "status": status},
        )

    async def call(
        self,
        context: ExecutionContext,
        method: str,
        path: str,
        *,
        auth: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        base: str | None = None,
    ) -> Any:
        """Send one request to ``base + path`` and return the parsed JSON body.

        An empty 2xx body is ``None``. *auth* goes as ``sensitive_headers``: only to the
        API's own origin, never after a redirect to another.

        Raises:
            UpstreamRateLimitedError: HTTP 429.
            UpstreamAPIError: Any other status of 400 or more, or a 2xx body that is not JSON.
        """
        response = await context.http.request(
            method,
            (base or self.base(context)) + path,
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            json=json,
            headers={"Accept": "application/json", **(headers or {})},
            sensitive_headers=auth,
        )
        return self.parse(response)

    def parse(self, response: GuardedResponse) -> Any:
        """The JSON body of *response*, or the typed error its status means."""
        payload: Any
        try:
            payload = response.json() if response.content.strip() else None
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise self.error(response, payload)
        if isinstance(payload, str):
            raise UpstreamAPIError(
                f"{self.display} API answered HTTP {response.status_code} with a body that is "
                "not JSON",
                details={"provider": self.provider, "status": response.status_code},
            )
        return payload
