"""Guarded outbound HTTP: SSRF checks, address pinning, credential scoping and limits."""

from blockpilot.net.client import GuardedHTTPClient, GuardedResponse
from blockpilot.net.policy import DestinationPolicy
from blockpilot.net.ranges import is_blocked_address

__all__ = ["DestinationPolicy", "GuardedHTTPClient", "GuardedResponse", "is_blocked_address"]
