"""What the setup page and the OAuth routes need, built once per Pilot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blockpilot.links import SetupLinks
from blockpilot.oauth.flow import OAuthFlow
from blockpilot.oauth.pending import PendingFlowStore
from blockpilot.oauth.state import OAuthStateStore
from blockpilot.pilot import Pilot
from blockpilot.web import sessions
from blockpilot.web.link_uses import SetupLinkUses
from blockpilot.web.sessions import BrowserSessions


@dataclass(frozen=True, slots=True)
class WebServices:
    pilot: Pilot
    links: SetupLinks
    oauth: OAuthFlow
    sessions: BrowserSessions
    link_uses: SetupLinkUses
    user_verifier_url: str | None


def build_services(pilot: Pilot, callback_url_for: Callable[[str, str], str]) -> WebServices:
    """The OAuth flow and browser sessions for *pilot*'s pages; the setup links are the
    Pilot's own (:attr:`Pilot.setup_links`), the ones its answers carry.

    Args:
        pilot: The runtime.
        callback_url_for: ``(public_url, provider)`` -> the OAuth callback URL.
    """
    settings = pilot.settings
    public_url = settings.effective_public_url
    flow = OAuthFlow(
        providers=pilot.oauth_provider,
        states=OAuthStateStore(pilot.engine, pilot.cipher),
        pending=PendingFlowStore(pilot.engine, pilot.cipher),
        credentials=pilot.credential_store,
        settings=settings,
        redirect_uri_for=lambda provider: callback_url_for(public_url, provider),
        # An MCP source with --auth oauth registers its client on the first connect.
        prepare=pilot.sources.prepare_oauth_client,
    )
    browser_sessions = BrowserSessions(
        pilot.cipher.key_ring.derived_keys(sessions.KEY_PURPOSE),
        secure=public_url.startswith("https://"),
        ttl_seconds=settings.setup_link_ttl_seconds,
    )
    return WebServices(
        pilot,
        pilot.setup_links,
        flow,
        browser_sessions,
        SetupLinkUses(pilot.engine),
        settings.user_verifier_url,
    )


def services_of(app_state: Any) -> WebServices:
    """The services attached to the app for its current Pilot."""
    services: WebServices | None = getattr(app_state, "web", None)
    pilot: Pilot | None = getattr(app_state, "pilot", None)
    if services is None or pilot is None or services.pilot is not pilot:
        raise RuntimeError("the setup page's services are not attached to this app's Pilot")
    return services
