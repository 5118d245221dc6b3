"""Calling a provider's API from a block: one base URL, the credential's headers sent only
there, and upstream failures turned into messages a model can act on
(docs/provider-blocks.md, docs/blocks-catalogue.md).

Every provider block goes through :class:`Provider` (a provider's API as a constant, called
with the run's context and credential: Slack, Discord, Telegram, Todoist, Airtable, the web
blocks) or :class:`ProviderAPI` (the same API bound to one run and its credential: GitHub,
Google, Notion, Linear, Jira, HubSpot), so they share one set of rules:

* requests go to the provider's base URL (the real one, or the operator's
  ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``) through the guarded HTTP client, and the
  credential travels as ``sensitive_headers`` (never to another origin, not even after a
  redirect);
* path segments that come from the model are percent-encoded (:func:`segment`), so an id
  such as ``../x`` cannot walk to another endpoint of the API;
* HTTP 429 (and GitHub's 403 with ``x-ratelimit-remaining: 0`` or ``retry-after``) raise
  :class:`~blockpilot.errors.UpstreamRateLimitedError` with the provider's wait time; any
  other error status raises :class:`~blockpilot.errors.UpstreamAPIError` with the
  provider's own words, cut short.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from blockpilot.errors import BlockExecutionError, UpstreamAPIError, UpstreamRateLimitedError
from blockpilot.executions.context import ExecutionContext
from blockpilot.net.client import GuardedResponse
from blockpilot.provider_facts import provider_facts

MAX_DETAIL_CHARS = 300
MAX_PAGES = 10  # pagination stops here even when the provider has more
DEFAULT_RETRY_AFTER = 60.0


def trim(text: Any, limit: int) -> str:
    """*text* as a string of at most *limit* characters (an ellipsis marks a cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"


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
    """The provider's own words from an error body, or ``""``.

    Flat shapes first (``message``, Telegram's ``description``, ``error``, ``detail``; an
    ``error`` object's ``message`` or ``type``), then nested ones (Jira's ``errorMessages``,
    GraphQL ``errors``, OAuth's ``error_description``). A plain-text body is its own words.
    """
    if isinstance(payload, str):
        return payload
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    if isinstance(error, dict) and (error.get("message") or error.get("type")):
        return str(error.get("message") or error.get("type"))
    for key in ("message", "description", "error", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    for key in ("message", "errorMessages", "error", "errors", "error_description"):
        text = _first_text(payload.get(key))
        if text:
            return text
    return ""


def retry_after_seconds(response: GuardedResponse, payload: Any = None) -> float:
    """Seconds to wait: ``Retry-After``, GitHub's ``x-ratelimit-reset`` (an epoch second), or
    a JSON ``retry_after`` (Discord, Telegram's ``parameters``); else a default."""
    try:
        return max(1.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        pass
    reset = (response.headers.get("x-ratelimit-reset") or "").strip()
    if reset.isdigit():
        reset_at = int(reset)  # GitHub: the epoch second the window resets
        return float(max(1, math.ceil(reset_at - time.time()) if reset_at > 10**9 else reset_at))
    if isinstance(payload, dict):
        for holder in (payload, payload.get("parameters")):
            value = holder.get("retry_after") if isinstance(holder, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return max(1.0, float(value))
    return DEFAULT_RETRY_AFTER


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


def _json_or_text(response: GuardedResponse, empty: Any) -> Any:
    try:
        return response.json() if response.content.strip() else empty
    except ValueError:
        return response.text


@dataclass(frozen=True, slots=True)
class Provider:
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
    detail: Callable[[Any], str] = error_detail

    @classmethod
    def known(cls, provider: str) -> Provider:
        """*provider*'s API from ``blockpilot.provider_facts`` (its name and base URL)."""
        facts = provider_facts(provider)
        return cls(provider, facts.display_name, facts.api_base)

    def base(self, context: ExecutionContext) -> str:
        return (context.provider_base_url(self.provider) or self.default_base).rstrip("/")

    def rate_limited(
        self, response: GuardedResponse, payload: Any = None
    ) -> UpstreamRateLimitedError:
        """The typed error for a rate-limited request, with the provider's wait time."""
        wait = retry_after_seconds(response, payload)
        status = response.status_code
        words = trim(" ".join(self.detail(payload).split()), MAX_DETAIL_CHARS)
        suffix = f": {words}" if words else ""
        return UpstreamRateLimitedError(
            f"{self.display} rate limit reached (HTTP {status}){suffix}; "
            f"retry after {wait:g} seconds",
            retry_after=wait,
            details={"provider": self.provider, "status": status, "retry_after": wait},
        )

    def error(self, response: GuardedResponse, payload: Any) -> UpstreamAPIError:
        """The typed error for a refused request (rate limits included)."""
        if is_rate_limited(response):
            return self.rate_limited(response, payload)
        words = trim(" ".join(self.detail(payload).split()), MAX_DETAIL_CHARS)
        status = response.status_code
        suffix = f": {words}" if words else ""
        hint = ""
        if status == 401:
            hint = f"; the {self.display} credential was refused, reconnect or replace it"
        elif status == 403:
            hint = f"; the {self.display} credential lacks access to this resource"
        return UpstreamAPIError(
            f"{self.display} API returned HTTP {status}{suffix}{hint}",
            details={"provider": self.provider, "status": status},
        )

    async def send(
        self,
        context: ExecutionContext,
        method: str,
        url: str,
        *,
        auth: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> GuardedResponse:
        """The raw response to ``method url``; rate limits raise, other errors don't.

        *auth* goes as ``sensitive_headers``: only to the API's own origin, never after a
        redirect to another.
        """
        response = await context.http.request(
            method,
            url,
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            json=json,
            headers=headers,
            sensitive_headers=auth,
        )
        if is_rate_limited(response):
            raise self.rate_limited(response, _json_or_text(response, None))
        return response

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

        An empty 2xx body is ``None``.

        Raises:
            UpstreamRateLimitedError: HTTP 429 (or GitHub's rate-limit 403).
            UpstreamAPIError: Any other status of 400 or more, or a 2xx body that is not JSON.
        """
        response = await self.send(
            context,
            method,
            (base or self.base(context)) + path,
            auth=auth,
            params=params,
            json=json,
            headers={"Accept": "application/json", **(headers or {})},
        )
        return self.parse(response)

    def parse(self, response: GuardedResponse, *, empty: Any = None) -> Any:
        """The JSON body of *response* (*empty* for no body), or the typed error its status
        means."""
        payload = _json_or_text(response, empty)
        if response.status_code >= 400:
            raise self.error(response, payload)
        if isinstance(payload, str):
            raise UpstreamAPIError(
                f"{self.display} API answered HTTP {response.status_code} with a body that is "
                "not JSON",
                details={"provider": self.provider, "status": response.status_code},
            )
        return payload


class ProviderAPI:
    """One provider's API bound to one block run and its credential.

    Args:
        context: The run's execution context (guarded client, provider base URLs).
        provider: Provider name, as in ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL``.
        display: Name used in messages (``"GitHub"``).
        default_base: The provider's real base URL.
        auth: The credential's headers, sent only to the base URL's origin.
        headers: Other headers every request carries (API version, accept).
        base: A base URL that wins over the override and the default (a tenant's site).
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
        self.api = Provider(provider, display, default_base)
        self.provider = provider
        self.display = display
        self.base = (base or self.api.base(context)).rstrip("/")
        self._auth = dict(auth)
        self._headers = dict(headers or {})

    @classmethod
    def known(
        cls,
        context: ExecutionContext,
        provider: str,
        *,
        auth: Mapping[str, str],
        base: str | None = None,
    ) -> ProviderAPI:
        """*provider*'s API from ``blockpilot.provider_facts``: name, base URL, headers."""
        facts = provider_facts(provider)
        return cls(
            context,
            provider=provider,
            display=facts.display_name,
            default_base=facts.api_base,
            auth=auth,
            headers=facts.api_headers,
            base=base,
        )

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
        return await self.api.send(
            self.context,
            method,
            self.base + path,
            auth=self._auth,
            params=params,
            json=json,
            headers={**self._headers, **(headers or {})},
        )

    def fail(self, response: GuardedResponse, payload: Any = None) -> UpstreamAPIError:
        """The typed error for a refused request."""
        return self.api.error(response, payload)

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
        return self.api.parse(response, empty={})
