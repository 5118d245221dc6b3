"""Guarded outbound HTTP: SSRF checks, address pinning, credential scoping and limits.

Public: :class:`GuardedHTTPClient` (``client``), :class:`DestinationPolicy` (``policy``) and
the host helpers of ``urls``. The modules with a leading underscore are this package's own:
the blocked address table (``_ranges``), the pinned transport (``_transport``), the capped
body reader (``_body``) and the query-string log filter (``_logs``); what other packages
need of them is exported here.
"""

from blockpilot.net._body import ACCEPT_ENCODING, read_body
from blockpilot.net._ranges import is_blocked_address
from blockpilot.net.client import GuardedHTTPClient, GuardedResponse
from blockpilot.net.policy import DestinationPolicy

__all__ = [
    "ACCEPT_ENCODING",
    "DestinationPolicy",
    "GuardedHTTPClient",
    "GuardedResponse",
    "is_blocked_address",
    "read_body",
]
