"""Signed approval links: ``<public_url>/reviews/<token>`` for one user's one review.

The token is signed (:mod:`blockpilot.links.signing`, label ``blockpilot-review-link.v1.``)
with a key derived from the encryption key ring (purpose ``review-links``), names the user and
the review, and expires with the review (docs/approvals.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from blockpilot.errors import TokenError
from blockpilot.links.signing import TokenSigner
from blockpilot.storage.reviews import Review

KEY_PURPOSE = "review-links"
_LABEL = b"blockpilot-review-link.v1."


class ReviewLinks:
    """Signs and checks approval links for reviews.

    Args:
        keys: Signing keys, the first signs; all verify (key rotation).
        public_url: Where browsers reach the service.
    """

    def __init__(self, keys: Sequence[bytes], public_url: str) -> None:
        self.signer = TokenSigner(keys, _LABEL)
        self.public_url = public_url.rstrip("/")

    def url(self, review: Review) -> str:
        """The approval link of *review* (an ``ApprovalUrlBuilder``)."""
        expires = int(review.expires_at.timestamp())
        token = self.signer.sign({"v": 1, "u": review.user_id, "r": review.id, "exp": expires})
        return f"{self.public_url}/reviews/{token}"

    def open(self, token: str) -> tuple[str, str]:
        """(user id, review id) of a valid link; :class:`TokenError` otherwise."""
        payload = self.signer.verify(token)
        user_id, review_id = payload.get("u"), payload.get("r")
        if payload.get("v") != 1 or not isinstance(user_id, str) or not isinstance(review_id, str):
            raise TokenError(reason="invalid")
        return user_id, review_id
