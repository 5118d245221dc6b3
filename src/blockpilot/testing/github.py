"""A fake GitHub REST API (repositories, issues, pull requests, contents, branches, code
search), with token auth, page-numbered pagination and errors as GitHub sends them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from ._http import (
    LOCALHOST,
    LocalHTTPServer,
    RecordedRequest,
    Response,
    _bearer_token,
    _Route,
)

# --------------------------------------------------------------------------------------
# GitHub
# --------------------------------------------------------------------------------------

_REPO = "/repos/{owner}/{repo}"


def _sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - GitHub's blob ids are SHA-1


class FakeGitHub(LocalHTTPServer):
    """A subset of the GitHub REST API.

    Serves ``GET /user``; ``GET /repos/{o}/{r}``; issues (list, create, read, comment,
    labels); pull requests (list, create, read, files, merge); ``GET``/``PUT`` contents;
    branches and ``GET /search/code``. Lists take ``per_page`` (at most 100) and ``page``
    and send a ``Link: <…>; rel="next"`` header while more pages exist.

    Tokens (``Authorization: Bearer <t>`` or ``token <t>``) must be in ``tokens`` or be
    added with :meth:`allow_token`; otherwise 401 ``{"message": "Bad credentials"}``.
    Every token presented (valid or not) is appended to :attr:`tokens_used`.
    ``base_url`` is the origin (the equivalent of ``https://api.github.com``).
    :meth:`rate_limit_next` answers like an exhausted rate limit (403,
    ``x-ratelimit-remaining: 0``).
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
        self._repos: dict[tuple[str, str], dict[str, Any]] = {}
        self._branches: dict[tuple[str, str], dict[str, str]] = {}
        self._files: dict[tuple[str, str, str, str], bytes] = {}
        self._pulls: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._pull_files: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self.comments: list[dict[str, Any]] = []
        self._tokens_used: list[str] = []
        self._counter = 100
        self.add_route("GET", "/user", self._user)
        self.add_route("GET", "/search/code", self._search_code)
        self.add_route("GET", _REPO, self._repo)
        self.add_route("GET", _REPO + "/branches", self._list_branches)
        self.add_route("GET", _REPO + "/issues", self._list_issues)
        self.add_route("POST", _REPO + "/issues", self._create_issue)
        self.add_route("GET", _REPO + "/issues/{number}", self._issue)
        self.add_route("POST", _REPO + "/issues/{number}/comments", self._comment)
        self.add_route("POST", _REPO + "/issues/{number}/labels", self._labels)
        self.add_route("GET", _REPO + "/pulls", self._list_pulls)
        self.add_route("POST", _REPO + "/pulls", self._create_pull)
        self.add_route("GET", _REPO + "/pulls/{number}", self._pull)
        self.add_route("GET", _REPO + "/pulls/{number}/files", self._list_pull_files)
        self.add_route("PUT", _REPO + "/pulls/{number}/merge", self._merge)
        contents = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/contents/(?P<path>.+)$"
        with self._lock:
            for method, handler in (("GET", self._get_file), ("PUT", self._put_file)):
                self._routes.insert(0, _Route(method, re.compile(contents), handler))

    # -- tokens -----------------------------------------------------------------------

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

    # -- data -------------------------------------------------------------------------

    def add_repo(
        self,
        owner: str,
        repo: str,
        *,
        description: str = "",
        default_branch: str = "main",
        stars: int = 0,
        language: str | None = None,
        private: bool = False,
    ) -> dict[str, Any]:
        """Register a repository (with its default branch); returns its API object."""
        data = {
            "id": len(self._repos) + 1,
            "name": repo,
            "full_name": f"{owner}/{repo}",
            "description": description or None,
            "default_branch": default_branch,
            "stargazers_count": stars,
            "forks_count": 0,
            "open_issues_count": 0,
            "language": language,
            "private": private,
            "html_url": f"https://github.com/{owner}/{repo}",
        }
        with self._lock:
            self._repos[(owner.lower(), repo.lower())] = data
            self._branches.setdefault((owner.lower(), repo.lower()), {})[default_branch] = _sha(
                default_branch.encode()
            )
        return dict(data)

    def add_branch(self, owner: str, repo: str, name: str) -> None:
        with self._lock:
            self._branches.setdefault((owner.lower(), repo.lower()), {})[name] = _sha(name.encode())

    def add_file(
        self, owner: str, repo: str, path: str, content: str | bytes, *, branch: str = "main"
    ) -> str:
        """Put a file on *branch*; returns its blob SHA."""
        data = content.encode() if isinstance(content, str) else content
        with self._lock:
            self._files[(owner.lower(), repo.lower(), branch, path)] = data
        return _sha(data)

    def file(self, owner: str, repo: str, path: str, *, branch: str = "main") -> bytes | None:
        with self._lock:
            return self._files.get((owner.lower(), repo.lower(), branch, path))

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

    def issue(self, owner: str, repo: str, number: int) -> dict[str, Any] | None:
        with self._lock:
            return self._issues.get((owner.lower(), repo.lower(), int(number)))

    def add_pull(
        self,
        owner: str,
        repo: str,
        number: int,
        title: str,
        *,
        head: str = "feature",
        base: str = "main",
        body: str | None = "",
        user: str = "octocat",
        files: Iterable[tuple[str, str]] = (),
        mergeable: bool = True,
    ) -> dict[str, Any]:
        """Register an open pull request; *files* are ``(filename, patch)`` pairs."""
        pull: dict[str, Any] = {
            "id": 2_000_000 + int(number),
            "number": int(number),
            "title": title,
            "body": body,
            "user": {"login": user, "type": "User"},
            "state": "open",
            "draft": False,
            "merged": False,
            "mergeable": mergeable,
            "head": {"ref": head, "sha": _sha(head.encode())},
            "base": {"ref": base, "sha": _sha(base.encode())},
            "html_url": f"https://github.com/{owner}/{repo}/pull/{number}",
        }
        key = (owner.lower(), repo.lower(), int(number))
        with self._lock:
            self._pulls[key] = pull
            self._pull_files[key] = [
                {
                    "filename": name,
                    "status": "modified",
                    "additions": patch.count("\n+"),
                    "deletions": patch.count("\n-"),
                    "patch": patch,
                }
                for name, patch in files
            ]
            # A pull request is an issue too: it takes part in comments and labels.
            self._issues.setdefault(
                key,
                {
                    **pull,
                    "labels": [],
                    "comments": 0,
                    "pull_request": {"html_url": pull["html_url"]},
                },
            )
        return dict(pull)

    def pull(self, owner: str, repo: str, number: int) -> dict[str, Any] | None:
        with self._lock:
            return self._pulls.get((owner.lower(), repo.lower(), int(number)))

    # -- errors -----------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response.json(
            {"message": message, "documentation_url": self.DOCS}, status, headers=headers
        )

    def fail_next(self, status: int, message: str = "Server Error", times: int = 1) -> None:
        self.queue_response(self.error_response(status, message), times=times)

    def rate_limit_next(self, reset_in: int = 60) -> None:
        """The next request meets an exhausted primary rate limit (403, remaining 0)."""
        import time

        self.queue_response(
            self.error_response(
                403,
                "API rate limit exceeded for user ID 1.",
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(int(time.time()) + reset_in),
                },
            )
        )

    def _not_found(self, request: RecordedRequest) -> Response:
        return self.error_response(404, "Not Found")

    def _authenticate(self, request: RecordedRequest) -> tuple[str | None, Response | None]:
        token = _bearer_token(request, schemes=("bearer", "token"))
        with self._lock:
            if token is not None:
                self._tokens_used.append(token)
            login = self._tokens.get(token) if token is not None else None
        if login is None:
            return None, self.error_response(401, "Bad credentials")
        return login, None

    # -- handlers ---------------------------------------------------------------------

    def _paged(self, request: RecordedRequest, items: list[Any]) -> Response:
        try:
            per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return self.error_response(422, "Validation Failed")
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            query = {**request.query, "page": str(page + 1), "per_page": str(per_page)}
            link = self.url(request.path) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            headers["Link"] = f'<{link}>; rel="next"'
        return Response.json(chunk, headers=headers)

    def _repo_or_404(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> tuple[tuple[str, str], Response | None]:
        _, error = self._authenticate(request)
        key = (unquote(params["owner"]).lower(), unquote(params["repo"]).lower())
        if error is not None:
            return key, error
        with self._lock:
            known = key in self._repos or any(k[:2] == key for k in self._issues)
        return key, None if known else self._not_found(request)

    def _user(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        login, error = self._authenticate(request)
        if error is not None:
            return error
        return Response.json({"login": login, "id": 1, "type": "User"})

    def _repo(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        with self._lock:
            repo = self._repos.get(key)
        return Response.json(repo) if repo else self._not_found(request)

    def _list_branches(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        with self._lock:
            branches = sorted(self._branches.get(key, {}).items())
        items = [
            {"name": n, "commit": {"sha": sha, "url": ""}, "protected": n == "main"}
            for n, sha in branches
        ]
        return self._paged(request, items)

    def _list_issues(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        state = request.query.get("state", "open")
        with self._lock:
            items = [
                dict(issue)
                for k, issue in sorted(self._issues.items(), key=lambda kv: -kv[0][2])
                if k[:2] == key and state in ("all", issue["state"])
            ]
        return self._paged(request, items)

    def _next_number(self) -> int:
        self._counter += 1
        return self._counter

    def _create_issue(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        body = request.json()
        if not isinstance(body.get("title"), str) or not body["title"]:
            return self.error_response(422, "Validation Failed")
        with self._lock:
            number = self._next_number()
        issue = self.add_issue(key[0], key[1], number, body["title"], body.get("body"), self.login)
        return Response.json(issue, status=201)

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

    def _issue_for_write(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> tuple[dict[str, Any] | None, Response | None]:
        _, error = self._authenticate(request)
        if error is not None:
            return None, error
        if not params["number"].isdigit():
            return None, self._not_found(request)
        issue = self.issue(params["owner"], params["repo"], int(params["number"]))
        return issue, None if issue is not None else self._not_found(request)

    def _comment(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        issue, error = self._issue_for_write(request, params)
        if error is not None or issue is None:
            return error or self._not_found(request)
        text = request.json().get("body")
        if not isinstance(text, str) or not text:
            return self.error_response(422, "Validation Failed")
        with self._lock:
            comment_id = self._next_number()
            comment = {
                "id": comment_id,
                "body": text,
                "user": {"login": self.login},
                "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
            }
            self.comments.append(comment)
            issue["comments"] += 1
        return Response.json(comment, status=201)

    def _labels(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        issue, error = self._issue_for_write(request, params)
        if error is not None or issue is None:
            return error or self._not_found(request)
        names = request.json().get("labels")
        if not isinstance(names, list):
            return self.error_response(422, "Validation Failed")
        with self._lock:
            for name in names:
                if all(label["name"] != name for label in issue["labels"]):
                    issue["labels"].append({"name": str(name), "color": "ededed"})
            labels = list(issue["labels"])
        return Response.json(labels)

    def _list_pulls(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        state = request.query.get("state", "open")
        with self._lock:
            items = [
                dict(p)
                for k, p in sorted(self._pulls.items(), key=lambda kv: -kv[0][2])
                if k[:2] == key and state in ("all", p["state"])
            ]
        return self._paged(request, items)

    def _create_pull(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return error
        body = request.json()
        with self._lock:
            branches = self._branches.get(key, {})
            missing = [body.get(f) for f in ("head", "base") if body.get(f) not in branches]
        if missing or not body.get("title"):
            return Response.json(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                    "documentation_url": self.DOCS,
                },
                422,
            )
        with self._lock:
            number = self._next_number()
        pull = self.add_pull(
            key[0], key[1], number, body["title"], head=body["head"], base=body["base"],
            body=body.get("body"), user=self.login,
        )  # fmt: skip
        return Response.json(pull, status=201)

    def _pull_key(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> tuple[tuple[str, str, int] | None, Response | None]:
        _, error = self._authenticate(request)
        if error is not None:
            return None, error
        if not params["number"].isdigit():
            return None, self._not_found(request)
        key = (params["owner"].lower(), params["repo"].lower(), int(params["number"]))
        with self._lock:
            known = key in self._pulls
        return (key, None) if known else (None, self._not_found(request))

    def _pull(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._pull_key(request, params)
        if key is None:
            return error or self._not_found(request)
        with self._lock:
            return Response.json(dict(self._pulls[key]))

    def _list_pull_files(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._pull_key(request, params)
        if key is None:
            return error or self._not_found(request)
        with self._lock:
            files = list(self._pull_files.get(key, []))
        return self._paged(request, files)

    def _merge(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._pull_key(request, params)
        if key is None:
            return error or self._not_found(request)
        method = (request.json() or {}).get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            return self.error_response(422, "Validation Failed")
        with self._lock:
            pull = self._pulls[key]
            if pull["merged"] or not pull["mergeable"]:
                return self.error_response(405, "Pull Request is not mergeable")
            pull.update(merged=True, state="closed")
            self._issues[key]["state"] = "closed"
        sha = _sha(f"merge {key}".encode())
        return Response.json(
            {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    def _file_key(
        self, request: RecordedRequest, params: dict[str, str], branch: str | None
    ) -> tuple[tuple[str, str, str, str] | None, Response | None]:
        key, error = self._repo_or_404(request, params)
        if error is not None:
            return None, error
        path = unquote(params["path"])
        if any(part in ("", ".", "..") for part in path.split("/")):
            return None, self._not_found(request)
        with self._lock:
            default = (self._repos.get(key) or {}).get("default_branch", "main")
        return (key[0], key[1], branch or default, path), None

    def _get_file(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        key, error = self._file_key(request, params, request.query.get("ref"))
        if key is None:
            return error or self._not_found(request)
        with self._lock:
            data = self._files.get(key)
            is_dir = data is None and any(
                k[:3] == key[:3] and k[3].startswith(key[3] + "/") for k in self._files
            )
        if is_dir:
            return Response.json([{"type": "file", "name": "x", "path": key[3] + "/x"}])
        if data is None:
            return self._not_found(request)
        encoded = base64.encodebytes(data).decode()  # GitHub wraps base64 at 60 columns
        return Response.json(
            {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": key[3].rsplit("/", 1)[-1],
                "path": key[3],
                "content": encoded,
                "sha": _sha(data),
                "html_url": f"https://github.com/{key[0]}/{key[1]}/blob/{key[2]}/{key[3]}",
            }
        )

    def _put_file(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "Problems parsing JSON")
        key, error = self._file_key(request, params, body.get("branch"))
        if key is None:
            return error or self._not_found(request)
        if not body.get("message") or not isinstance(body.get("content"), str):
            return self.error_response(422, "Invalid request.")
        with self._lock:
            if key[2] not in self._branches.get(key[:2], {}):
                return self.error_response(404, f"Branch {key[2]} not found")
            current = self._files.get(key)
        if current is not None and body.get("sha") != _sha(current):
            message = '"sha" wasn\'t supplied.' if "sha" not in body else "sha does not match"
            return self.error_response(422 if "sha" not in body else 409, message)
        data = base64.b64decode(body["content"])
        with self._lock:
            self._files[key] = data
        html = f"https://github.com/{key[0]}/{key[1]}/blob/{key[2]}/{key[3]}"
        return Response.json(
            {
                "content": {"path": key[3], "sha": _sha(data), "html_url": html},
                "commit": {"sha": _sha(json.dumps(body).encode()), "message": body["message"]},
            },
            status=200 if current is not None else 201,
        )

    def _search_code(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        _, error = self._authenticate(request)
        if error is not None:
            return error
        query = request.query.get("q", "")
        terms = [t for t in query.split() if ":" not in t]
        repos = [t[5:].lower() for t in query.split() if t.startswith("repo:")]
        if not terms:
            return self.error_response(422, "Validation Failed")
        with self._lock:
            files = sorted(self._files.items())
        items = [
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "sha": _sha(data),
                "html_url": f"https://github.com/{o}/{r}/blob/{b}/{path}",
                "repository": {"full_name": f"{o}/{r}"},
            }
            for (o, r, b, path), data in files
            if (not repos or f"{o}/{r}" in repos)
            and all(t.lower() in data.decode("utf-8", "replace").lower() for t in terms)
        ]
        try:
            per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return self.error_response(422, "Validation Failed")
        chunk = items[(page - 1) * per_page : page * per_page]
        return Response.json(
            {"total_count": len(items), "incomplete_results": False, "items": chunk}
        )
