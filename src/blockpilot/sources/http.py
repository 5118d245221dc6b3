"""The guarded client as one source's blocks see it (docs/sources.md).

An operator-given base URL may point at a private network. That exemption belongs to the
source's own blocks only: each run gets a view of the shared client whose policy adds the
base URL's host and port, so no other block gains access to it. The view shares the
connection pool; only the policy differs.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from urllib.parse import urlsplit

from blockpilot.net.client import GuardedHTTPClient
from blockpilot.net.urls import normalise_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def base_origin(base_url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a base URL, host normalised as the guarded client does."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    return scheme, normalise_host(parts.hostname or ""), parts.port or _DEFAULT_PORTS[scheme]


def source_client(
    http: GuardedHTTPClient, base_url: str, *, trusted: bool, follow_redirects: bool = True
) -> GuardedHTTPClient:
    """*http* with the base URL exempt from the private-address guard (when *trusted*).

    Args:
        http: The process's guarded client.
        base_url: The source's base URL.
        trusted: The operator gave the base URL (``--base-url``); a URL taken from the
            description itself stays under the normal guard.
        follow_redirects: False when a secret rides in the query string: a redirect could
            carry it elsewhere, so none is followed.
    """
    policy = http.policy
    if trusted:
        _, host, port = base_origin(base_url)
        policy = replace(policy, allowed_hosts=policy.allowed_hosts | {(host, port)})
    if not follow_redirects:
        policy = replace(policy, max_redirects=0)
    if policy is http.policy:
        return http
    view = copy.copy(http)
    view.policy = policy
    return view
