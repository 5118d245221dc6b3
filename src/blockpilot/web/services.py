"""What the setup page and the OAuth routes need, built once per Pilot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blockpilot.oauth.flow import OAuthFlow
from blockpilot.oauth.pending import PendingFlowStore
from blockpilot.oauth.state import OAuthStateStore
from blockpilot.pilot import Pilot
from blockpilot.web import sessions
from blockpilot.web.link_uses import SetupLinkUses
from blockpilot.web.links import KEY_PURPOSE, SetupLinks
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
    """Signed links and the OAuth flow for *pilot*, and its run_block responses get setup URLs.

    Args:
        pilot: The runtime.
        callback_url_for: ``(public_url, provider)`` -> the OAuth callback URL.
    """
    settings = pilot.settings
    public_url = settings.effective_public_url
    links = SetupLinks(
        pilot.cipher.key_ring.derived_keys(KEY_PURPOSE),
        public_url,
        ttl_seconds=settings.setup_link_ttl_seconds,
    )
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
    pilot.set_setup_url_builder(links.setup_url_builder)
    return WebServices(
        pilot,
        links,
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
