"""What the provider fakes (GitHub, Google, Notion, Linear, Jira, HubSpot) share: accepted
tokens, the tokens presented, routes over several path segments and provider-shaped errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ._http import (
    LOCALHOST,
    Handler,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    _bearer_token,
    _Route,
)


class TokenAPIServer(LocalHTTPServer):
    """A fake API that accepts the tokens in :attr:`tokens` and records every token presented.

    Subclasses say how a token is read from a request (:meth:`presented_token`) and how the
    provider words an error (:meth:`error_response`); :meth:`authenticate` answers the
    provider's 401 for a missing or unknown token.
    """

    def __init__(self, tokens: Iterable[str] | None = None, *, host: str = LOCALHOST) -> None:
        super().__init__(host=host)
        self._tokens: set[str] = set(tokens or ())
        self._tokens_used: list[str] = []

    # -- tokens -----------------------------------------------------------------------

    @property
    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._tokens)

    def allow_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    @property
    def tokens_used(self) -> list[str]:
        """Tokens presented by clients, in request order (including rejected ones)."""
        with self._lock:
            return list(self._tokens_used)

    def reset(self) -> None:
        """Also clears :attr:`tokens_used` (data and allowed tokens stay)."""
        with self._lock:
            super().reset()
            self._tokens_used.clear()

    def presented_token(self, request: RecordedRequest) -> str | None:
        return _bearer_token(request)

    def authenticate(self, request: RecordedRequest) -> Response | None:
        """``None`` when the request carries an accepted token, else the provider's 401."""
        token = self.presented_token(request)
        with self._lock:
            if token is not None:
                self._tokens_used.append(token)
            ok = token is not None and token in self._tokens
        return None if ok else self.error_response(401, "invalid or missing credentials")

    # -- errors -----------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        """An error as this provider sends it (override for the provider's shape)."""
        return Response.json({"message": message}, status=status, headers=headers)

    def fail_next(self, status: int, message: str = "upstream failure", times: int = 1) -> None:
        """Answer the next *times* requests with the provider's error."""
        self.queue_response(self.error_response(status, message), times=times)

    def rate_limit_next(self, retry_after: int = 30) -> None:
        """Answer the next request with the provider's HTTP 429."""
        self.queue_response(
            self.error_response(429, "rate limit exceeded", {"Retry-After": str(retry_after)})
        )

    def _not_found(self, request: RecordedRequest) -> Response:
        return self.error_response(404, "not found")

    # -- routing ----------------------------------------------------------------------

    def add_regex_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Like :meth:`add_route`, with a regular expression (named groups are the params),
        for paths whose last part spans several segments (file paths, ranges)."""
        with self._lock:
            self._routes.insert(0, _Route(method.upper(), re.compile(pattern), handler))


def page_of(items: list[Any], start: int, size: int) -> tuple[list[Any], int | None]:
    """``items[start:start+size]`` and the next start, or ``None`` on the last page."""
    chunk = items[start : start + size]
    return chunk, (start + size if start + size < len(items) else None)
