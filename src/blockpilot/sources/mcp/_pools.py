"""Which event loops have a pool of upstream MCP sessions (``sessions.SessionPool``).

Kept apart from :mod:`blockpilot.sources.mcp._sessions` so that asking "is there a pool?" on
every tool call, and at every start-up, does not import the MCP client SDK (about 0.4 s)
in a process that never talked to an MCP server.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blockpilot.sources.mcp._sessions import SessionPool

# Sessions are bound to the loop they run in: one pool per loop, gone with the loop.
POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionPool] = (
    weakref.WeakKeyDictionary()
)


def current_pool() -> SessionPool | None:
    """The running loop's pool if one was made (no MCP call, no pool)."""
    return POOLS.get(asyncio.get_running_loop())


__all__ = ["POOLS", "current_pool"]
