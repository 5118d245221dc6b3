"""The guarded client as one source's blocks see it (docs/sources.md).

An operator-given base URL may point at a private network. That exemption belongs to the
source's own blocks only: each run uses :meth:`GuardedHTTPClient.with_exemptions`, a view of
the shared client whose policy exempts the base URL's host and port for requests that start
there, so no other block gains access to it. The view shares the connection pool.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from blockpilot.net.client import GuardedHTTPClient
from blockpilot.net.policy import exempt_destination


def source_client(
    http: GuardedHTTPClient, base_url: str, *, trusted: bool, follow_redirects: bool = True
) -> GuardedHTTPClient:
    """*http* with the base URL exempt from the private-address guard (when *trusted*).

    Args:
        http: The run's guarded client.
        base_url: The source's base URL.
        trusted: The operator gave the base URL (``--base-url``); a URL taken from the
            description itself stays under the normal guard.
        follow_redirects: False when a secret rides in the query string: a redirect could
            carry it elsewhere, so none is followed.
    """
    view = http.with_exemptions([exempt_destination(base_url)]) if trusted else http
    if not follow_redirects:
        view = copy.copy(view)
        view.policy = replace(view.policy, max_redirects=0)
        view._owns_pool = False  # closing this view must not close the shared pool
    return view
