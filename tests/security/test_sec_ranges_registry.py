"""The blocked-range table covers IANA's special-purpose registries and cloud host endpoints.

Sources: IANA "IPv4 Special-Purpose Address Registry" and "IPv6 Special-Purpose Address
Registry" (RFC 6890 and the RFCs each row names), plus cloud endpoints that are not in
either registry (see docs/security.md).
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from blockpilot.net._ranges import blocked_reason

# One address inside every range the table must block that it missed before (issue 11).
NEWLY_BLOCKED = [
    "168.63.129.16",  # Azure WireServer / host endpoint (not in IANA's registry)
    "3fff::1",  # documentation, RFC 9637
    "3fff:fff:ffff::1",  # last /20 of it
    "5f00::1",  # SRv6 SIDs, RFC 9602
    "5f00:ffff::1",
    "100:0:0:1::1",  # dummy IPv6 prefix, RFC 9780
]

# Neighbours that are public and must stay reachable.
STILL_PUBLIC = ["168.63.129.15", "168.63.129.17", "3fff:1000::1", "5f01::1", "2606:4700::1111"]


@pytest.mark.parametrize("address", NEWLY_BLOCKED)
def test_special_purpose_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ip_address(address)) is not None


@pytest.mark.parametrize("address", STILL_PUBLIC)
def test_neighbours_stay_public(address: str) -> None:
    assert blocked_reason(ip_address(address)) is None


async def test_a_web_request_to_the_azure_host_endpoint_is_refused(open_pilot) -> None:
    from tests.security.sec_helpers import WEB_REQUEST_ID, tool_json

    pilot = await open_pilot()
    alice, _ = await pilot.users.create("alice")
    for url in ("http://168.63.129.16/machine", "http://[3fff::1]/", "http://[5f00::1]/"):
        arguments = {"block_id": WEB_REQUEST_ID, "input_data": {"url": url, "method": "GET"}}
        result = tool_json(await pilot.call_tool("run_block", arguments, user_id=alice.id))
        assert result["type"] == "error" and "blocked" in result["message"].lower(), result
