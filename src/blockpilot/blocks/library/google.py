"""Google blocks: Gmail, Calendar, Sheets and Docs over their REST APIs, with the user's
connected Google account (OAuth2) and the narrowest scope each block needs.

Each API has its own host (``gmail.googleapis.com``, ``www.googleapis.com/calendar/v3``,
``sheets.googleapis.com``, ``docs.googleapis.com``); ``BLOCKPILOT_PROVIDER_GOOGLE_BASE_URL``
replaces all of them with one origin that serves the same paths. Documents and sheets are
named by id or by their ``docs.google.com`` URL, which is only parsed, never fetched.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import MAX_PAGES, ProviderAPI, segment, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput, OAuth2Credentials
from blockpilot.errors import BlockExecutionError
from blockpilot.executions.context import ExecutionContext

_SCOPE = "https://www.googleapis.com/auth/"
GMAIL_READONLY = _SCOPE + "gmail.readonly"
GMAIL_SEND = _SCOPE + "gmail.send"
GMAIL_COMPOSE = _SCOPE + "gmail.compose"
CALENDAR_READONLY = _SCOPE + "calendar.readonly"
CALENDAR_EVENTS = _SCOPE + "calendar.events"
SHEETS_READONLY = _SCOPE + "spreadsheets.readonly"
SHEETS = _SCOPE + "spreadsheets"
DOCS_READONLY = _SCOPE + "documents.readonly"

GMAIL_API = "https://gmail.googleapis.com"
CALENDAR_API = "https://www.googleapis.com"
SHEETS_API = "https://sheets.googleapis.com"
DOCS_API = "https://docs.googleapis.com"

MAX_EMAIL_BODY_CHARS = 5_000
MAX_DOC_CHARS = 100_000
MAX_SHEET_ROWS = 2_000
_DOC_URL = re.compile(r"^https://docs\.google\.com/(?:spreadsheets|document)/d/([A-Za-z0-9_-]+)")
_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")


def google_credentials_field(*scopes: str) -> Any:
    return CredentialsField(
        providers=["google"],
        supported_types=["oauth2"],
        required_scopes=scopes,
        description="Connected Google account",
    )


def document_id(value: str, what: str) -> str:
    """The id in a ``docs.google.com`` URL, or *value* itself if it looks like an id."""
    text = value.strip()
    match = _DOC_URL.match(text)
    if match:
        return match.group(1)
    if _DOC_ID.match(text):
        return text
    raise BlockExecutionError(
        f"{what} must be a Google {what.split('_')[0]} id or its https://docs.google.com/… URL"
    )


def rfc3339(value: str, field: str) -> str:
    """An ISO 8601 date-time as RFC 3339 (UTC when it names no offset)."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BlockExecutionError(
            f"{field} must be an ISO 8601 date-time such as 2026-03-01T09:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


class GoogleBlockBase(Block):
    """Shared plumbing: the API client for one Google API with the account's token."""

    default_base = GMAIL_API

    async def run(
        self,
        input_data: Any,
        *,
        credentials: OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        api = ProviderAPI(
            execution_context,
            provider="google",
            display="Google",
            default_base=self.default_base,
            auth={"Authorization": credentials.auth_header()},
            headers={"Accept": "application/json"},
        )
        async for output in self.call(api, input_data, execution_context):
            yield output

    def call(self, api: ProviderAPI, input_data: Any, context: ExecutionContext) -> BlockOutput:
        raise NotImplementedError


# -- Gmail ------------------------------------------------------------------------------


def _header(message: dict[str, Any], name: str) -> str:
    for header in (message.get("payload") or {}).get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value") or "")
    return ""


def _plain_text(part: dict[str, Any]) -> str:
    """The first ``text/plain`` body in a message part tree (base64url-decoded)."""
    if part.get("mimeType") == "text/plain":
        data = (part.get("body") or {}).get("data")
        if isinstance(data, str):
            padded = data + "=" * (-len(data) % 4)
            try:
                return base64.urlsafe_b64decode(padded).decode("utf-8", errors="replace")
            except ValueError:
                return ""
    for child in part.get("parts") or []:
        if isinstance(child, dict):
            text = _plain_text(child)
            if text:
                return text
    return ""


def _raw_message(to: str, subject: str, body: str, cc: str = "") -> str:
    """An RFC 5322 message, base64url-encoded as the Gmail API wants it."""
    message = EmailMessage()  # refuses CR/LF in headers (ValueError): no header injection
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message.set_content(body)
    return base64.urlsafe_b64encode(message.as_bytes()).decode()


class _MailInput(BlockSchemaInput):
    to: str = SchemaField(
        description="Recipient address(es), comma-separated", min_length=3, max_length=2000
    )
    subject: str = SchemaField(description="Subject line", max_length=998)
    body: str = SchemaField(description="Plain-text body of the e-mail", max_length=500_000)
    cc: str = SchemaField(
        default="", description="Cc address(es), comma-separated", max_length=2000
    )


class GmailReadBlock(GoogleBlockBase):
    id = "39f1fd68-d43d-43e6-97b1-1ac7b22539fc"
    effect = BlockEffect.READ
    description = (
        "Reads or searches emails in the user's Gmail inbox (mailbox) with a Gmail search "
        "query (e.g. 'is:unread', 'from:alice invoice', 'newer_than:7d'); returns sender, "
        "subject, date, snippet and body of each email."
    )
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        query: str = SchemaField(
            default="is:unread", description="Gmail search query", max_length=1000
        )
        max_results: Integer = SchemaField(
            default=10, ge=1, le=100, description="Most e-mails to return"
        )
        credentials: CredentialsMetaInput = google_credentials_field(GMAIL_READONLY)

    class Output(BlockSchemaOutput):
        emails: list[dict[str, Any]] = SchemaField(
            description="E-mails: id, thread_id, from, to, subject, date, snippet, body"
        )

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        ids: list[str] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await api.call(
                "GET",
                "/gmail/v1/users/me/messages",
                params={
                    "q": input_data.query or None,
                    "maxResults": min(100, input_data.max_results - len(ids)),
                    "pageToken": token,
                },
            )
            ids += [str(m["id"]) for m in page.get("messages") or [] if isinstance(m, dict)]
            token = page.get("nextPageToken")
            if not token or len(ids) >= input_data.max_results:
                break
        emails = []
        for message_id in ids[: input_data.max_results]:
            message = await api.call(
                "GET",
                f"/gmail/v1/users/me/messages/{segment(message_id)}",
                params={"format": "full"},
            )
            emails.append(
                {
                    "id": message.get("id"),
                    "thread_id": message.get("threadId"),
                    "from": _header(message, "From"),
                    "to": _header(message, "To"),
                    "subject": _header(message, "Subject"),
                    "date": _header(message, "Date"),
                    "snippet": str(message.get("snippet") or ""),
                    "body": trim(_plain_text(message.get("payload") or {}), MAX_EMAIL_BODY_CHARS),
                }
            )
        yield "emails", emails


class GmailSendBlock(GoogleBlockBase):
    id = "795762c0-0026-4b62-ae07-0d0baa256c9c"
    effect = BlockEffect.WRITE
    description = "Sends an e-mail from the user's Gmail account."
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(_MailInput):
        credentials: CredentialsMetaInput = google_credentials_field(GMAIL_SEND)

    class Output(BlockSchemaOutput):
        id: str = SchemaField(description="Gmail id of the sent message")
        status: str = SchemaField(description="'sent'")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        raw = _raw_message(input_data.to, input_data.subject, input_data.body, input_data.cc)
        sent = await api.call("POST", "/gmail/v1/users/me/messages/send", json={"raw": raw})
        yield "id", str(sent.get("id") or "")
        yield "status", "sent"


class GmailCreateDraftBlock(GoogleBlockBase):
    id = "eb7fc9de-de83-444d-98b7-d9074e077813"
    effect = BlockEffect.WRITE
    description = (
        "Creates a draft e-mail in the user's Gmail account without sending it (to review "
        "and send later)."
    )
    categories = frozenset({BlockCategory.COMMUNICATION})

    class Input(_MailInput):
        credentials: CredentialsMetaInput = google_credentials_field(GMAIL_COMPOSE)

    class Output(BlockSchemaOutput):
        draft_id: str = SchemaField(description="Id of the draft")
        message_id: str = SchemaField(description="Gmail id of the draft's message")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        raw = _raw_message(input_data.to, input_data.subject, input_data.body, input_data.cc)
        draft = await api.call("POST", "/gmail/v1/users/me/drafts", json={"message": {"raw": raw}})
        yield "draft_id", str(draft.get("id") or "")
        yield "message_id", str((draft.get("message") or {}).get("id") or "")


# -- Calendar ---------------------------------------------------------------------------


def _when(value: Any) -> str:
    return str((value or {}).get("dateTime") or (value or {}).get("date") or "")


class GoogleCalendarReadEventsBlock(GoogleBlockBase):
    id = "11fcd48d-b115-4341-b815-2fc6b5b2ec59"
    effect = BlockEffect.READ
    description = (
        "Reads upcoming events from the user's Google Calendar (meetings, appointments) in a "
        "time window, optionally matching a search term."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY})
    default_base = CALENDAR_API

    class Input(BlockSchemaInput):
        calendar_id: str = SchemaField(
            default="primary", description="Calendar id ('primary' is the user's own)",
            max_length=300,
        )  # fmt: skip
        start_time: str = SchemaField(
            default="", description="Window start, ISO 8601 (default: now)", max_length=64
        )
        end_time: str = SchemaField(
            default="", description="Window end, ISO 8601 (default: open)", max_length=64
        )
        search_term: str = SchemaField(
            default="", description="Only events containing this text", max_length=500
        )
        max_events: Integer = SchemaField(
            default=10, ge=1, le=250, description="Most events to return"
        )
        credentials: CredentialsMetaInput = google_credentials_field(CALENDAR_READONLY)

    class Output(BlockSchemaOutput):
        events: list[dict[str, Any]] = SchemaField(
            description="Events: id, title, start, end, location, description, attendees, url"
        )

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        start = (
            rfc3339(input_data.start_time, "start_time")
            if input_data.start_time
            else datetime.now(UTC).isoformat()
        )
        end = rfc3339(input_data.end_time, "end_time") if input_data.end_time else None
        path = f"/calendar/v3/calendars/{segment(input_data.calendar_id)}/events"
        items: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await api.call(
                "GET",
                path,
                params={
                    "timeMin": start,
                    "timeMax": end,
                    "q": input_data.search_term or None,
                    "maxResults": min(250, input_data.max_events - len(items)),
                    "singleEvents": "true",
                    "orderBy": "startTime",
                    "pageToken": token,
                },
            )
            items += [e for e in page.get("items") or [] if isinstance(e, dict)]
            token = page.get("nextPageToken")
            if not token or len(items) >= input_data.max_events:
                break
        yield (
            "events",
            [
                {
                    "id": e.get("id"),
                    "title": str(e.get("summary") or ""),
                    "start": _when(e.get("start")),
                    "end": _when(e.get("end")),
                    "location": str(e.get("location") or ""),
                    "description": trim(e.get("description"), 1000),
                    "attendees": [
                        str(a.get("email")) for a in e.get("attendees") or [] if isinstance(a, dict)
                    ],
                    "url": str(e.get("htmlLink") or ""),
                }
                for e in items[: input_data.max_events]
            ],
        )


class GoogleCalendarCreateEventBlock(GoogleBlockBase):
    id = "61351c22-8e94-422c-ad1b-1b96d1251dd4"
    effect = BlockEffect.WRITE
    description = (
        "Creates an event (meeting, appointment) in the user's Google Calendar, optionally "
        "inviting guests by e-mail."
    )
    categories = frozenset({BlockCategory.PRODUCTIVITY})
    default_base = CALENDAR_API

    class Input(BlockSchemaInput):
        event_title: str = SchemaField(
            description="Title of the event", min_length=1, max_length=1000
        )
        start_time: str = SchemaField(
            description="Start, ISO 8601 (e.g. 2026-03-01T09:00:00+01:00)", max_length=64
        )
        end_time: str = SchemaField(description="End, ISO 8601", max_length=64)
        description: str = SchemaField(
            default="", description="Description of the event", max_length=8000
        )
        location: str = SchemaField(default="", description="Where it happens", max_length=1000)
        guest_emails: list[str] = SchemaField(
            default_factory=list, description="E-mail addresses to invite", max_length=100
        )
        send_notifications: bool = SchemaField(
            default=True, description="E-mail the invitation to the guests"
        )
        calendar_id: str = SchemaField(
            default="primary", description="Calendar id ('primary' is the user's own)",
            max_length=300,
        )  # fmt: skip
        credentials: CredentialsMetaInput = google_credentials_field(CALENDAR_EVENTS)

    class Output(BlockSchemaOutput):
        event_id: str = SchemaField(description="Id of the new event")
        event_link: str = SchemaField(description="Link to the event in Google Calendar")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        start = rfc3339(input_data.start_time, "start_time")
        end = rfc3339(input_data.end_time, "end_time")
        if datetime.fromisoformat(end) <= datetime.fromisoformat(start):
            raise BlockExecutionError("end_time must be after start_time")
        event: dict[str, Any] = {
            "summary": input_data.event_title,
            "start": {"dateTime": start},
            "end": {"dateTime": end},
        }
        if input_data.description:
            event["description"] = input_data.description
        if input_data.location:
            event["location"] = input_data.location
        if input_data.guest_emails:
            event["attendees"] = [{"email": e.strip()} for e in input_data.guest_emails]
        created = await api.call(
            "POST",
            f"/calendar/v3/calendars/{segment(input_data.calendar_id)}/events",
            params={"sendUpdates": "all" if input_data.send_notifications else "none"},
            json=event,
        )
        yield "event_id", str(created.get("id") or "")
        yield "event_link", str(created.get("htmlLink") or "")


# -- Sheets and Docs --------------------------------------------------------------------


class GoogleSheetsReadBlock(GoogleBlockBase):
    id = "264143d9-3aa4-4e64-b78c-81a89027092d"
    effect = BlockEffect.READ
    description = (
        "Reads the cell values of a Google Sheets spreadsheet range (rows of a sheet) as a "
        "list of rows."
    )
    categories = frozenset({BlockCategory.DATA})
    default_base = SHEETS_API

    class Input(BlockSchemaInput):
        spreadsheet_id: str = SchemaField(
            description="Spreadsheet id or its https://docs.google.com/spreadsheets/d/… URL",
            max_length=2048,
        )
        range: str = SchemaField(
            default="Sheet1", description="A1 range, e.g. Sheet1 or Sheet1!A1:D20", max_length=200
        )
        credentials: CredentialsMetaInput = google_credentials_field(SHEETS_READONLY)

    class Output(BlockSchemaOutput):
        result: list[list[str]] = SchemaField(description="Rows of cell values")
        range: str = SchemaField(description="The range that was read")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        sheet = document_id(input_data.spreadsheet_id, "spreadsheet_id")
        data = await api.call(
            "GET", f"/v4/spreadsheets/{segment(sheet)}/values/{segment(input_data.range)}"
        )
        rows = data.get("values") or []
        yield (
            "result",
            [[str(cell) for cell in row] for row in rows[:MAX_SHEET_ROWS] if isinstance(row, list)],
        )
        yield "range", str(data.get("range") or input_data.range)


class GoogleSheetsAppendBlock(GoogleBlockBase):
    id = "abb217ab-7793-4070-927b-7e8719ac5666"
    effect = BlockEffect.WRITE
    description = "Appends one or more rows to the end of a sheet in a Google Sheets spreadsheet."
    categories = frozenset({BlockCategory.DATA})
    default_base = SHEETS_API

    class Input(BlockSchemaInput):
        spreadsheet_id: str = SchemaField(
            description="Spreadsheet id or its https://docs.google.com/spreadsheets/d/… URL",
            max_length=2048,
        )
        sheet_name: str = SchemaField(
            default="Sheet1", description="Sheet (tab) to append to", max_length=200
        )
        values: list[list[str]] = SchemaField(
            description="Rows to append, each a list of cell values", min_length=1, max_length=1000
        )
        credentials: CredentialsMetaInput = google_credentials_field(SHEETS)

    class Output(BlockSchemaOutput):
        updated_range: str = SchemaField(description="Where the rows were written")
        updated_rows: int = SchemaField(description="Number of rows appended")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        sheet = document_id(input_data.spreadsheet_id, "spreadsheet_id")
        data = await api.call(
            "POST",
            f"/v4/spreadsheets/{segment(sheet)}/values/{segment(input_data.sheet_name)}:append",
            params={"valueInputOption": "USER_ENTERED", "insertDataOption": "INSERT_ROWS"},
            json={"majorDimension": "ROWS", "values": input_data.values},
        )
        updates = data.get("updates") or {}
        yield "updated_range", str(updates.get("updatedRange") or "")
        yield "updated_rows", int(updates.get("updatedRows") or 0)


def _doc_text(elements: list[Any]) -> list[str]:
    """Text of a Docs body: paragraphs' text runs and, recursively, table cells."""
    out: list[str] = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        paragraph = element.get("paragraph")
        if isinstance(paragraph, dict):
            out.append(
                "".join(
                    str((run.get("textRun") or {}).get("content") or "")
                    for run in paragraph.get("elements") or []
                    if isinstance(run, dict)
                )
            )
        table = element.get("table")
        if isinstance(table, dict):
            for row in table.get("tableRows") or []:
                cells = [
                    "".join(_doc_text(cell.get("content") or [])).strip()
                    for cell in (row or {}).get("tableCells") or []
                    if isinstance(cell, dict)
                ]
                out.append(" | ".join(cells) + "\n")
    return out


class GoogleDocsReadBlock(GoogleBlockBase):
    id = "ba297eeb-ce29-47c5-9663-5b9a76f36e46"
    effect = BlockEffect.READ
    description = "Reads the title and plain text of a Google Docs document."
    categories = frozenset({BlockCategory.PRODUCTIVITY})
    default_base = DOCS_API

    class Input(BlockSchemaInput):
        document_id: str = SchemaField(
            description="Document id or its https://docs.google.com/document/d/… URL",
            max_length=2048,
        )
        credentials: CredentialsMetaInput = google_credentials_field(DOCS_READONLY)

    class Output(BlockSchemaOutput):
        title: str = SchemaField(description="Title of the document")
        text: str = SchemaField(description="Text of the document")

    async def call(self, api: ProviderAPI, input_data: Input, context: Any) -> BlockOutput:
        doc = document_id(input_data.document_id, "document_id")
        data = await api.call("GET", f"/v1/documents/{segment(doc)}")
        content = (data.get("body") or {}).get("content") or []
        yield "title", str(data.get("title") or "")
        yield "text", trim("".join(_doc_text(content)), MAX_DOC_CHARS)
