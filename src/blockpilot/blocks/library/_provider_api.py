"""Calling a provider's REST API from a block: one base URL, the credential's headers sent
only there, and upstream failures turned into messages a model can act on.

Every provider block (GitHub, Google, Notion, Linear, Jira, HubSpot) goes through
:class:`ProviderAPI`, so they share the rules in ``docs/provider-blocks.md``:

* requests go to the provider's base URL (the real one, or the operator's
  ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``) through the guarded HTTP client, and the
  credential travels as ``sensitive_headers`` (never to another origin, not even after a
  redirect);
* path segments that come from the model are percent-encoded, so an id such as ``../x``
  cannot walk to another endpoint of the API;
* HTTP 429 (and GitHub's 403 with ``x-ratelimit-remaining: 0`` or ``retry-after``) raise
  :class:`~blockpilot.errors.UpstreamRateLimitedError` with the provider's wait time; any
  other error status raises :class:`~blockpilot.errors.UpstreamAPIError` with the
  provider's own message, cut short.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from blockpilot.errors import BlockExecutionError, UpstreamAPIError, UpstreamRateLimitedError
from blockpilot.executions.context import ExecutionContext
from blockpilot.net.client import GuardedResponse

MAX_ERROR_CHARS = 300
MAX_PAGES = 10  # pagination stops here even when the provider has more


def segment(value: str | int) -> str:
    """One URL path segment, percent-encoded (``/`` too), never ``.`` or ``..``."""
    text = str(value).strip()
    if text in ("", ".", ".."):
        raise BlockExecutionError(f"{text!r} is not a valid identifier")
    return quote(text, safe="")


def _first_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return _first_text(value[0])
    if isinstance(value, dict):
        for key in ("message", "msg", "detail", "error_description"):
            if isinstance(value.get(key), str):
                return str(value[key])
        if value:
            return _first_text(next(iter(value.values())))
    return ""


def error_detail(payload: Any) -> str:
    """The provider's own words from an error body (GitHub, Google, Notion, Linear, Jira,
    HubSpot shapes), or ``""``."""
    if not isinstance(payload, dict):
        return ""
    for key in ("message", "errorMessages", "error", "errors", "error_description"):
        text = _first_text(payload.get(key))
        if text:
            return text[:MAX_ERROR_CHARS]
    return ""


def _retry_after(response: GuardedResponse) -> float:
    headers = response.headers
    for name in ("retry-after", "x-ratelimit-reset"):
        raw = (headers.get(name) or "").strip()
        if not raw.isdigit():
            continue
        value = int(raw)
        if name == "x-ratelimit-reset":  # GitHub: the epoch second the window resets
            return max(1.0, value - time.time()) if value > 10**9 else max(1.0, value)
        return max(1.0, float(value))
    return 60.0


def is_rate_limited(response: GuardedResponse) -> bool:
    """HTTP 429, or GitHub's 403 for an exhausted primary limit (``x-ratelimit-remaining:
    0``) or a secondary limit (``retry-after``)."""
    return response.status_code == 429 or (
        response.status_code == 403
        and (
            response.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in response.headers
        )
    )


class ProviderAPI:
    """One provider's API for one block run.

    Args:
        context: The run's execution context (guarded client, provider base URLs).
        provider: Provider name, as in ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``.
        display: Name used in messages (``"GitHub"``).
        default_base: The provider's real base URL.
        auth: The credential's headers, sent only to the base URL's origin.
        headers: Other headers every request carries (API version, accept).
    """

    def __init__(
        self,
        context: ExecutionContext,
        *,
        provider: str,
        display: str,
        default_base: str,
        auth: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        base: str | None = None,
    ) -> None:
        self.context = context
        self.provider = provider
        self.display = display
        self.base = (base or context.provider_base_url(provider) or default_base).rstrip("/")
        self._auth = dict(auth)
        self._headers = dict(headers or {})

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> GuardedResponse:
        """The raw response to ``method base+path``; rate limits raise, other errors don't."""
        response = await self.context.http.request(
            method,
            self.base + path,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=json,
            headers={**self._headers, **(headers or {})},
            sensitive_headers=self._auth,
        )
        if is_rate_limited(response):
            wait = _retry_after(response)
            raise UpstreamRateLimitedError(
                f"{self.display} rate limit reached (HTTP {response.status_code}); "
                f"try again in {int(wait)} seconds",
                retry_after=wait,
                details={"provider": self.provider, "status": response.status_code},
            )
        return response

    def fail(self, response: GuardedResponse, payload: Any = None) -> UpstreamAPIError:
        detail = " ".join(error_detail(payload).split())
        status = response.status_code
        hint = ""
        if status == 401:
            hint = f"; the {self.display} credential was refused, reconnect or replace it"
        elif status == 403:
            hint = f"; the {self.display} credential lacks access to this resource"
        return UpstreamAPIError(
            f"{self.display} API returned HTTP {status}" + (f": {detail}" if detail else "") + hint,
            details={"provider": self.provider, "status": response.status_code},
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of a successful call (``{}`` for an empty body)."""
        response = await self.send(method, path, params=params, json=json, headers=headers)
        try:
            payload = response.json() if response.content.strip() else {}
        except ValueError:
            payload = None
        if response.status_code >= 400:
            raise self.fail(response, payload)
        if payload is None:
            raise UpstreamAPIError(
                f"{self.display} API answered HTTP {response.status_code} with a body that is "
                "not JSON",
                details={"provider": self.provider, "status": response.status_code},
            )
        return payload


def clip(text: str | None, limit: int) -> str:
    """*text* cut to *limit* characters, marked when cut."""
    value = text or ""
    return value if len(value) <= limit else value[: limit - 1] + "…"
