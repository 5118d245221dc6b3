"""A fake of Google's Gmail, Calendar, Sheets and Docs REST APIs on one origin, with OAuth
bearer tokens that carry scopes, page tokens, and errors in Google's JSON shape."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from ._http import LOCALHOST, RecordedRequest, Response
from ._provider import TokenAPIServer

_S = "https://www.googleapis.com/auth/"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class FakeGoogle(TokenAPIServer):
    """Gmail (``/gmail/v1/users/me/...``: list, get, send, drafts), Calendar
    (``/calendar/v3/calendars/{id}/events``: list, insert), Sheets (``/v4/spreadsheets/{id}/
    values/{range}`` and ``:append``) and Docs (``/v1/documents/{id}``) on one origin; point
    ``BLOCKPILOT_PROVIDER_GOOGLE_BASE_URL`` at :attr:`base_url`.

    ``tokens`` maps an access token to the scopes it was granted (``None``: every scope); a
    call the token's scopes do not cover gets Google's 403 "insufficient authentication
    scopes". Lists page with ``maxResults`` and ``pageToken``/``nextPageToken``.
    """

    def __init__(
        self, tokens: Mapping[str, Iterable[str] | None] | None = None, *, host: str = LOCALHOST
    ) -> None:
        super().__init__(tokens=(tokens or {}).keys(), host=host)
        self._scopes: dict[str, set[str] | None] = {
            t: None if s is None else set(s) for t, s in (tokens or {}).items()
        }
        self.messages: list[dict[str, Any]] = []
        self.sent: list[email.message.EmailMessage] = []
        self.drafts: list[email.message.EmailMessage] = []
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.sheets: dict[str, dict[str, list[list[str]]]] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        gmail = "/gmail/v1/users/me"
        self.add_route("GET", gmail + "/messages", self._list_messages)
        self.add_route("GET", gmail + "/messages/{id}", self._get_message)
        self.add_route("POST", gmail + "/messages/send", self._send)
        self.add_route("POST", gmail + "/drafts", self._draft)
        self.add_route("GET", "/calendar/v3/calendars/{cal}/events", self._list_events)
        self.add_route("POST", "/calendar/v3/calendars/{cal}/events", self._insert_event)
        values = r"^/v4/spreadsheets/(?P<id>[^/]+)/values/(?P<range>[^/]+?)"
        self.add_regex_route("GET", values + "$", self._read_values)
        self.add_regex_route("POST", values + ":append$", self._append_values)
        self.add_route("GET", "/v1/documents/{id}", self._document)

    def allow_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        with self._lock:
            self._tokens.add(token)
            self._scopes[token] = None if scopes is None else set(scopes)

    # -- data -------------------------------------------------------------------------

    def add_message(
        self,
        subject: str,
        body: str,
        *,
        sender: str = "alice@example.com",
        to: str = "me@example.com",
        unread: bool = True,
    ) -> str:
        """Put a message in the inbox (newest first); returns its id."""
        with self._lock:
            message_id = f"18c{len(self.messages) + 1:013x}"
            self.messages.insert(
                0,
                {
                    "id": message_id,
                    "threadId": message_id,
                    "labelIds": ["INBOX"] + (["UNREAD"] if unread else []),
                    "from": sender,
                    "to": to,
                    "subject": subject,
                    "body": body,
                },
            )
        return message_id

    def add_event(
        self, summary: str, start: str, end: str, *, calendar: str = "primary", **extra: Any
    ) -> dict[str, Any]:
        with self._lock:
            items = self.events.setdefault(calendar, [])
            event = {
                "id": f"evt{len(items) + 1}",
                "status": "confirmed",
                "summary": summary,
                "start": {"dateTime": start},
                "end": {"dateTime": end},
                "htmlLink": f"https://www.google.com/calendar/event?eid=evt{len(items) + 1}",
                **extra,
            }
            items.append(event)
        return event

    def add_sheet(self, spreadsheet_id: str, name: str, rows: list[list[str]]) -> None:
        with self._lock:
            self.sheets.setdefault(spreadsheet_id, {})[name] = [list(r) for r in rows]

    def add_document(self, document_id: str, title: str, paragraphs: Iterable[str]) -> None:
        content = [
            {"paragraph": {"elements": [{"textRun": {"content": text + "\n"}}]}}
            for text in paragraphs
        ]
        with self._lock:
            self.documents[document_id] = {
                "documentId": document_id,
                "title": title,
                "body": {"content": content},
            }

    # -- protocol ---------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response.json(
            {
                "error": {
                    "code": status,
                    "message": message,
                    "status": _STATUS.get(status, "UNKNOWN"),
                    "errors": [{"message": message, "domain": "global", "reason": "error"}],
                }
            },
            status,
            headers=headers,
        )

    def _allowed(self, request: RecordedRequest, *scopes: str) -> Response | None:
        """Google's 401 for a bad token, 403 when it lacks all of *scopes*."""
        failed = self.authenticate(request)
        if failed is not None:
            return self.error_response(
                401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )  # fmt: skip
        token = self.presented_token(request) or ""
        with self._lock:
            granted = self._scopes.get(token)
        if granted is not None and not granted & {_S + s for s in scopes}:
            return self.error_response(403, "Request had insufficient authentication scopes.")
        return None

    def _page(
        self, request: RecordedRequest, items: list[Any], default: int
    ) -> tuple[list[Any], str | None]:
        size = max(1, int(request.query.get("maxResults", default)))
        start = int(request.query.get("pageToken") or 0)
        nxt = str(start + size) if start + size < len(items) else None
        return items[start : start + size], nxt

    # -- Gmail ------------------------------------------------------------------------

    def _matches(self, message: dict[str, Any], query: str) -> bool:
        for term in query.split():
            if term == "is:unread":
                ok = "UNREAD" in message["labelIds"]
            elif term.startswith("from:"):
                ok = term[5:].lower() in message["from"].lower()
            elif term.startswith("subject:"):
                ok = term[8:].lower() in message["subject"].lower()
            else:
                text = f"{message['subject']} {message['body']} {message['from']}".lower()
                ok = term.lower() in text
            if not ok:
                return False
        return True

    def _list_messages(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "gmail.readonly", "gmail.modify")
        if denied:
            return denied
        query = request.query.get("q", "")
        with self._lock:
            found = [m for m in self.messages if self._matches(m, query)]
        chunk, nxt = self._page(request, found, 100)
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if chunk:
            body["messages"] = [{"id": m["id"], "threadId": m["threadId"]} for m in chunk]
        if nxt:
            body["nextPageToken"] = nxt
        return Response.json(body)

    def _get_message(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "gmail.readonly", "gmail.modify")
        if denied:
            return denied
        with self._lock:
            message = next((m for m in self.messages if m["id"] == params["id"]), None)
        if message is None:
            return self.error_response(404, "Requested entity was not found.")
        headers = [
            {"name": "From", "value": message["from"]},
            {"name": "To", "value": message["to"]},
            {"name": "Subject", "value": message["subject"]},
            {"name": "Date", "value": "Mon, 1 Dec 2026 09:00:00 +0000"},
        ]
        return Response.json(
            {
                "id": message["id"],
                "threadId": message["threadId"],
                "labelIds": message["labelIds"],
                "snippet": message["body"][:100],
                "payload": {
                    "mimeType": "multipart/alternative",
                    "headers": headers,
                    "parts": [
                        {
                            "mimeType": "text/plain",
                            "body": {"data": _b64url(message["body"].encode())},
                        },
                        {
                            "mimeType": "text/html",
                            "body": {"data": _b64url(f"<p>{message['body']}</p>".encode())},
                        },
                    ],
                },
            }
        )

    def _parse_raw(self, raw: Any) -> email.message.EmailMessage | None:
        if not isinstance(raw, str):
            return None
        try:
            data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except ValueError:
            return None
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        return parsed if parsed["To"] else None

    def _send(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "gmail.send", "gmail.compose", "gmail.modify")
        if denied:
            return denied
        message = self._parse_raw((request.json() or {}).get("raw"))
        if message is None:
            return self.error_response(400, "Invalid To header")
        with self._lock:
            self.sent.append(message)
            message_id = f"sent{len(self.sent)}"
        return Response.json({"id": message_id, "threadId": message_id, "labelIds": ["SENT"]})

    def _draft(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "gmail.compose", "gmail.modify")
        if denied:
            return denied
        message = self._parse_raw(((request.json() or {}).get("message") or {}).get("raw"))
        if message is None:
            return self.error_response(400, "Invalid To header")
        with self._lock:
            self.drafts.append(message)
            n = len(self.drafts)
        return Response.json(
            {"id": f"r-{n}", "message": {"id": f"draft{n}", "threadId": f"draft{n}",
                                         "labelIds": ["DRAFT"]}}
        )  # fmt: skip

    # -- Calendar ---------------------------------------------------------------------

    def _list_events(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "calendar.readonly", "calendar.events", "calendar")
        if denied:
            return denied
        calendar = unquote(params["cal"])
        time_min = request.query.get("timeMin", "")
        time_max = request.query.get("timeMax")
        term = request.query.get("q", "").lower()
        with self._lock:
            if calendar not in self.events and calendar != "primary":
                return self.error_response(404, "Not Found")
            items = [
                e
                for e in self.events.get(calendar, [])
                if e["end"]["dateTime"] >= time_min[:19]
                and (time_max is None or e["start"]["dateTime"] < time_max[:19])
                and term in f"{e.get('summary', '')} {e.get('description', '')}".lower()
            ]
        items.sort(key=lambda e: e["start"]["dateTime"])
        chunk, nxt = self._page(request, items, 250)
        body: dict[str, Any] = {"kind": "calendar#events", "summary": calendar, "items": chunk}
        if nxt:
            body["nextPageToken"] = nxt
        return Response.json(body)

    def _insert_event(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "calendar.events", "calendar")
        if denied:
            return denied
        body = request.json() or {}
        start = (body.get("start") or {}).get("dateTime")
        end = (body.get("end") or {}).get("dateTime")
        if not start or not end:
            return self.error_response(400, "Missing end time.")
        extra = {k: v for k, v in body.items() if k not in ("summary", "start", "end")}
        event = self.add_event(
            str(body.get("summary") or ""), start, end, calendar=unquote(params["cal"]), **extra
        )
        event["sendUpdates"] = request.query.get("sendUpdates")
        return Response.json(event)

    # -- Sheets and Docs --------------------------------------------------------------

    _A1 = re.compile(r"^([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$")

    @staticmethod
    def _col(letters: str) -> int:
        n = 0
        for ch in letters:
            n = n * 26 + ord(ch) - 64
        return n - 1

    def _sheet_range(
        self, spreadsheet: str, a1: str
    ) -> tuple[str, list[list[str]] | None, tuple[int, int, int, int] | None]:
        name, _, cells = unquote(a1).partition("!")
        with self._lock:
            rows = self.sheets.get(spreadsheet, {}).get(name.strip("'"))
        match = self._A1.match(cells) if cells else None
        if cells and match is None:
            return name, None, None
        if match is None:
            return name, rows, None
        c1, r1 = self._col(match.group(1)), int(match.group(2)) - 1
        c2 = self._col(match.group(3)) if match.group(3) else c1
        r2 = int(match.group(4)) - 1 if match.group(4) else r1
        return name, rows, (r1, c1, r2, c2)

    def _read_values(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "spreadsheets.readonly", "spreadsheets")
        if denied:
            return denied
        if params["id"] not in self.sheets:
            return self.error_response(404, "Requested entity was not found.")
        name, rows, box = self._sheet_range(params["id"], params["range"])
        if rows is None:
            return self.error_response(400, f"Unable to parse range: {unquote(params['range'])}")
        if box is not None:
            r1, c1, r2, c2 = box
            rows = [row[c1 : c2 + 1] for row in rows[r1 : r2 + 1]]
        body: dict[str, Any] = {"range": unquote(params["range"]), "majorDimension": "ROWS"}
        if rows:
            body["values"] = rows
        return Response.json(body)

    def _append_values(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "spreadsheets")
        if denied:
            return denied
        if params["id"] not in self.sheets:
            return self.error_response(404, "Requested entity was not found.")
        name, rows, _ = self._sheet_range(params["id"], params["range"])
        values = (request.json() or {}).get("values")
        if rows is None or not isinstance(values, list):
            return self.error_response(400, "Invalid values")
        with self._lock:
            first = len(rows) + 1
            rows.extend([str(c) for c in row] for row in values)
        width = max((len(r) for r in values), default=1)
        last_col = chr(64 + min(width, 26))
        updated = f"{name}!A{first}:{last_col}{first + len(values) - 1}"
        return Response.json(
            {
                "spreadsheetId": params["id"],
                "tableRange": f"{name}!A1:{last_col}{first - 1}",
                "updates": {
                    "spreadsheetId": params["id"],
                    "updatedRange": updated,
                    "updatedRows": len(values),
                    "updatedColumns": width,
                    "updatedCells": sum(len(r) for r in values),
                },
            }
        )

    def _document(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        denied = self._allowed(request, "documents.readonly", "documents", "drive.readonly")
        if denied:
            return denied
        with self._lock:
            document = self.documents.get(unquote(params["id"]))
        if document is None:
            return self.error_response(404, "Requested entity was not found.")
        return Response.json(document)
