"""Server-rendered HTML for the setup page and the OAuth pages: no script.

Every page is a Jinja2 template (``web/templates/*.html``, autoescaped: every value is text,
none becomes markup), inside one frame (``layout.html``). The pages are plain forms
that work without JavaScript, with a ``lang``, landmarks (banner, main, contentinfo), one
``h1``, labels tied to every input, visible focus, and messages that say "Error:" or
"Connected" in words rather than by colour alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

from blockpilot.credentials.servers import SERVER_BOUND_PROVIDERS

CSS = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #4a5360; --line: #c9d1db;
  --accent: #0b57d0; --accent-ink: #ffffff; --bad: #a4161a; --good: #0f6b35; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 17px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
.skip { position: absolute; left: -9999px; top: 0; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem 1rem; z-index: 1; }
header, footer { max-width: 44rem; margin: 0 auto; padding: 1rem 1.25rem; }
header .brand { margin: 0; font-weight: 700; letter-spacing: .02em; }
footer { color: var(--muted); font-size: .9rem; }
main { max-width: 44rem; margin: 0 auto; padding: 0 1.25rem 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 0 0 .75rem; }
section, .panel { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 1.25rem; margin: 0 0 1.25rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 0; }
dt { font-weight: 600; color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { font: .95em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #eef1f4; padding: .05em .3em; border-radius: 4px; }
label { display: block; font-weight: 600; margin: .9rem 0 .25rem; }
.hint { color: var(--muted); font-size: .92rem; margin: .25rem 0 0; }
input[type=text], input[type=password] { width: 100%; font: inherit; padding: .55rem .7rem;
  border: 2px solid #8c959f; border-radius: 6px; background: #fff; color: var(--ink); }
fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 1rem 0 0;
  padding: .25rem 1rem 1rem; }
legend { font-weight: 600; padding: 0 .35rem; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 0 1rem; }
button { margin-top: 1.1rem; font: inherit; font-weight: 600; padding: .65rem 1.3rem;
  border-radius: 6px; border: 2px solid var(--accent); background: var(--accent);
  color: var(--accent-ink); cursor: pointer; }
button:hover { filter: brightness(1.1); }
a:focus-visible, input:focus-visible, button:focus-visible, main:focus-visible {
  outline: 3px solid #f2a900; outline-offset: 2px; }
section > :first-child, .panel > :first-child { margin-top: 0; }
section > :last-child, .panel > :last-child { margin-bottom: 0; }
.alert { border: 2px solid var(--bad); border-left-width: 8px; background: #fff; }
.alert strong { color: var(--bad); }
.success { border: 2px solid var(--good); border-left-width: 8px; }
.success strong { color: var(--good); }
.lead { font-size: 1.05rem; }
.or { text-align: center; color: var(--muted); margin: -.5rem 0 .75rem; }
button.secondary { background: #fff; color: var(--accent); }
"""
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
SECURITY_HEADERS = {
    # No script at all; the one inline style block is allowed by its hash.
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    # The token in the URL must not leak to the provider's page through Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

TYPE_NAMES = {
    "api_key": "API key",
    "oauth2": "Connected account (OAuth)",
    "user_password": "Username and password",
    "host_scoped": "Headers for one host",
}


def readable_block_name(name: str) -> str:
    """``AITextGeneratorBlock`` -> ``AI Text Generator``."""
    base = name[: -len("Block")] if name.endswith("Block") and len(name) > 5 else name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", base)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("blockpilot.web", "templates"),
        autoescape=True,  # every value is text; nothing a user, provider or model sent is markup
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **values: Any) -> str:
    """The template *template* (under ``web/templates``) with *values*, autoescaped."""
    return _templates().get_template(template).render(**values)


def layout(title: str, body: str) -> str:
    """The page frame around *body* (markup: built by a template or escaped here)."""
    # The style block is trusted markup whose hash the Content-Security-Policy allows.
    return render("layout.html", title=title, css=Markup(CSS), body=Markup(body))


def html_page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(layout(title, body), status_code=status, headers=SECURITY_HEADERS)


def message_page(
    title: str, message: str, *, status: int, hint: str | None = None, success: bool = False
) -> HTMLResponse:
    """A page that only tells something: an error (with what to do) or a success."""
    body = render("message.html", title=title, message=message, hint=hint, success=success)
    return html_page(title, body, status)


@dataclass(frozen=True, slots=True)
class Requirement:
    """What the setup page shows about the missing credential."""

    block_name: str
    block_description: str
    user_name: str
    field_title: str
    field_description: str
    provider: str
    provider_name: str
    types: Sequence[str]
    scopes: Sequence[str]
    host: str | None


@dataclass(slots=True)
class FormState:
    """Values to show again after an error: never a secret."""

    kind: str | None = None
    error: str | None = None
    title: str = ""
    username_given: bool = False
    host: str | None = None
    header_names: list[str] = field(default_factory=list)


HEADER_ROWS = 3


def setup_page(
    req: Requirement,
    *,
    form_action: str,
    connect_action: str | None,
    csrf: str,
    state: FormState | None = None,
) -> str:
    """The body of ``GET /setup/<token>``: what is missing and a form per supported type
    (``web/templates/setup.html``)."""
    state = state or FormState()
    forms = [
        kind
        for kind in ("oauth2", "api_key", "user_password", "host_scoped")
        if kind in req.types and (kind != "oauth2" or connect_action is not None)
    ]
    headers_kept = state.kind == "host_scoped"
    names = state.header_names if headers_kept else []
    return render(
        "setup.html",
        req=req,
        state=state,
        csrf=csrf,
        form_action=form_action,
        connect_action=connect_action,
        forms=forms or ["none"],
        block_title=readable_block_name(req.block_name),
        accepted=", ".join(TYPE_NAMES.get(t, t) for t in req.types),
        # SMTP credentials are sent to the one server they name (docs/security.md).
        server_bound=req.provider in SERVER_BOUND_PROVIDERS,
        header_host=state.host if headers_kept and state.host is not None else (req.host or ""),
        header_names=[
            names[i] if i < len(names) else ("Authorization" if i == 0 else "")
            for i in range(HEADER_ROWS)
        ],
    )


def connected_body(title: str, lines: Iterable[str]) -> str:
    """A success page: what was saved, and where to go next."""
    return render("connected.html", title=title, lines=list(lines))


@dataclass(frozen=True, slots=True)
class PendingConnect:
    """What the confirm page shows about a connect that waits for its user."""

    flow_id: str
    provider_name: str
    account: str | None
    user_name: str
    scopes: Sequence[str]
    block_name: str | None


def confirm_body(connect: PendingConnect, *, action: str, csrf: str) -> str:
    """The last step of a connect: who is connected to whom, and a button to say yes."""
    block = readable_block_name(connect.block_name) if connect.block_name else None
    return render("confirm.html", connect=connect, block_title=block, action=action, csrf=csrf)
