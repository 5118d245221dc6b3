"""A fake GitHub REST API (issues), with token auth as GitHub does it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._http import (
    LOCALHOST,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    _bearer_token,
)

# --------------------------------------------------------------------------------------
# GitHub
# --------------------------------------------------------------------------------------


class FakeGitHub(LocalHTTPServer):
    """A subset of the GitHub REST API: ``GET /repos/{owner}/{repo}/issues/{number}``
    and ``GET /user``.

    Tokens (``Authorization: Bearer <t>`` or ``token <t>``) must be in ``tokens`` or be
    added with :meth:`allow_token`; otherwise 401 ``{"message": "Bad credentials"}``.
    Every token presented (valid or not) is appended to :attr:`tokens_used`.
    ``base_url`` is the origin (the equivalent of ``https://api.github.com``).
    """

    DOCS = "https://docs.github.com/rest"

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        *,
        login: str = "octocat",
        host: str = LOCALHOST,
    ) -> None:
        super().__init__(host=host)
        self.login = login
        self._tokens: dict[str, str] = {t: login for t in tokens or ()}
        self._issues: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._tokens_used: list[str] = []
        self.add_route("GET", "/user", self._user)
        self.add_route("GET", "/repos/{owner}/{repo}/issues/{number}", self._issue)

    @property
    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._tokens)

    def allow_token(self, token: str, login: str | None = None) -> None:
        """Accept ``token``; ``GET /user`` will report ``login`` (default: ``self.login``)."""
        with self._lock:
            self._tokens[token] = login or self.login

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def add_issue(
        self,
        owner: str,
        repo: str,
        number: int,
        title: str,
        body: str | None = "",
        user: str = "octocat",
        *,
        state: str = "open",
    ) -> dict[str, Any]:
        """Register an issue; returns the JSON object the API will serve for it."""
        issue: dict[str, Any] = {
            "id": 1_000_000 + int(number),
            "number": int(number),
            "title": title,
            "body": body,
            "user": {"login": user, "type": "User"},
            "state": state,
            "html_url": f"https://github.com/{owner}/{repo}/issues/{number}",
            "labels": [],
            "comments": 0,
        }
        with self._lock:
            self._issues[(owner.lower(), repo.lower(), int(number))] = issue
        return dict(issue)

    @property
    def tokens_used(self) -> list[str]:
        """Tokens presented by clients, in request order (including rejected ones)."""
        with self._lock:
            return list(self._tokens_used)

    def reset(self) -> None:
        """Also clears :attr:`tokens_used` (issues and allowed tokens stay)."""
        with self._lock:
            super().reset()
            self._tokens_used.clear()

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json({"message": "Not Found", "documentation_url": self.DOCS}, 404)

    def _authenticate(self, request: RecordedRequest) -> tuple[str | None, Response | None]:
        token = _bearer_token(request, schemes=("bearer", "token"))
        with self._lock:
            if token is not None:
                self._tokens_used.append(token)
            login = self._tokens.get(token) if token is not None else None
        if login is None:
            return None, Response.json(
                {"message": "Bad credentials", "documentation_url": self.DOCS}, 401
            )
        return login, None

    def _user(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        login, error = self._authenticate(request)
        if error is not None:
            return error
        return Response.json({"login": login, "id": 1, "type": "User"})

    def _issue(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        _, error = self._authenticate(request)
        if error is not None:
            return error
        if not params["number"].isdigit():
            return self._not_found(request)
        key = (params["owner"].lower(), params["repo"].lower(), int(params["number"]))
        with self._lock:
            issue = self._issues.get(key)
        if issue is None:
            return self._not_found(request)
        served = dict(issue, url=self.url(request.path))
        return Response.json(served)
