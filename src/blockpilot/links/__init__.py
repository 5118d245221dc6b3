"""Signed links a person opens in a browser: setup links and approval links.

The Pilot builds both from its settings (the public URL) and keys derived from its encryption
key ring, so every answer that needs a link gets one, whichever door it leaves by; the web
pages (:mod:`blockpilot.web`) verify them with the same objects (``Pilot.setup_links``,
``Pilot.review_links``). See docs/oauth.md and docs/approvals.md.
"""

from __future__ import annotations

from blockpilot.credentials.crypto import CredentialCipher
from blockpilot.links._reviews import KEY_PURPOSE as REVIEW_KEY_PURPOSE
from blockpilot.links._reviews import ReviewLinks
from blockpilot.links._setup import KEY_PURPOSE as SETUP_KEY_PURPOSE
from blockpilot.links._setup import SetupGrant, SetupLinks
from blockpilot.settings import Settings

__all__ = [
    "REVIEW_KEY_PURPOSE",
    "SETUP_KEY_PURPOSE",
    "ReviewLinks",
    "SetupGrant",
    "SetupLinks",
    "review_links",
    "setup_links",
]


def setup_links(settings: Settings, cipher: CredentialCipher) -> SetupLinks:
    """The setup-link signer for *settings*' public URL and link lifetime."""
    return SetupLinks(
        cipher.key_ring.derived_keys(SETUP_KEY_PURPOSE),
        settings.effective_public_url,
        ttl_seconds=settings.setup_link_ttl_seconds,
    )


def review_links(settings: Settings, cipher: CredentialCipher) -> ReviewLinks:
    """The approval-link signer for *settings*' public URL."""
    return ReviewLinks(
        cipher.key_ring.derived_keys(REVIEW_KEY_PURPOSE), settings.effective_public_url
    )
