"""Which project files one ``run_block`` passes through, from MCP and from HTTP.

The measure behind "files a newcomer opens to follow one run" (docs/architecture.md): one
``run_block`` of ``CalculatorBlock`` (no credentials) is made once to warm up (imports,
first-time caches), then once more under :func:`sys.setprofile`; every ``src/blockpilot``
file with a Python function called during that second call is listed, each with the number
of distinct functions of it that ran. A newcomer following the call reads at least these.

The MCP path is ``mcp.Client(server)`` in process (the SDK's memory transport): the
handler, the Pilot, the tool, the runner and below. The HTTP path is
``POST /api/v1/tools/run_block`` through the whole ASGI app (middleware included) with
``httpx.ASGITransport``.

``--coroutines`` lists instead the coroutines one warm in-process
``pilot.call_tool("run_block")`` starts, in order and nested as they await each other: each
is a frame and an object per call, and those still waiting while the block runs are what a
run in flight keeps alive (docs/performance.md).

Run: ``python -m bench.trace_path`` (prints both lists; ``--json`` for one JSON document).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

SOURCE = Path(__file__).resolve().parent.parent / "src" / "blockpilot"
CALCULATOR = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
ARGUMENTS = {"block_id": CALCULATOR, "input_data": {"operation": "add", "a": 2, "b": 3}}


async def _traced(call: Callable[[], Awaitable[Any]]) -> dict[str, set[str]]:
    """Project files (relative to src/blockpilot) -> the functions of theirs that ran."""
    seen: dict[str, set[str]] = defaultdict(set)
    root = str(SOURCE)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        filename = frame.f_code.co_filename
        if filename.startswith(root):
            seen[str(Path(filename).relative_to(SOURCE))].add(frame.f_code.co_qualname)

    await _profiled(call, profile)
    return dict(seen)


async def _profiled(
    call: Callable[[], Awaitable[Any]],
    profile: Callable[[FrameType, str, Any], None],
    *,
    warm_ups: int = 1,
) -> None:
    """*call* after *warm_ups* calls (lazy imports and first-time caches are not the path),
    with *profile* as ``sys.setprofile``'s hook."""
    for _ in range(warm_ups):
        await call()
    sys.setprofile(profile)
    try:
        await call()
    finally:
        sys.setprofile(None)


async def measure() -> dict[str, dict[str, list[str]]]:
    import httpx
    import mcp

    from blockpilot.api import create_app
    from blockpilot.mcp.server import build_mcp_server
    from blockpilot.pilot import Pilot
    from blockpilot.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        async with await Pilot.open(settings) as pilot:
            user, api_key = await pilot.users.create("trace")
            results: dict[str, dict[str, set[str]]] = {}

            async with mcp.Client(build_mcp_server(pilot, user.id)) as client:

                async def via_mcp() -> None:
                    result = await client.call_tool("run_block", ARGUMENTS)
                    assert not result.is_error, result

                results["mcp"] = await _traced(via_mcp)

            app = create_app(pilot)
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {api_key}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

                async def via_http() -> None:
                    response = await http.post(
                        "/api/v1/tools/run_block", json=ARGUMENTS, headers=headers
                    )
                    assert response.json()["type"] == "block_output", response.text

                results["http"] = await _traced(via_http)
    return {
        door: {f: sorted(fns) for f, fns in sorted(files.items())}
        for door, files in results.items()
    }


async def coroutine_chain(
    arguments: dict[str, Any] | None = None,
) -> list[tuple[int, str]]:
    """``(depth, "file:qualified name")`` of every coroutine one warm in-process
    ``pilot.call_tool("run_block", arguments)`` starts (CalculatorBlock by default), in the
    order they start; depth counts the coroutines awaiting it, from 0 for ``call_tool``."""
    from blockpilot.pilot import Pilot
    from blockpilot.settings import Settings

    chain: list[tuple[int, str]] = []
    started: set[FrameType] = set()

    def coroutine_depth(frame: FrameType | None) -> int:
        depth = 0
        while frame is not None:
            depth += bool(frame.f_code.co_flags & inspect.CO_COROUTINE)
            frame = frame.f_back
        return depth

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        # A coroutine's frame gets a "call" event each time it is resumed: count its first.
        is_coroutine = frame.f_code.co_flags & inspect.CO_COROUTINE
        if event == "call" and is_coroutine and frame not in started:
            started.add(frame)
            where = Path(frame.f_code.co_filename)
            name = where.relative_to(SOURCE) if where.is_relative_to(SOURCE) else where.name
            chain.append((coroutine_depth(frame.f_back), f"{name}:{frame.f_code.co_qualname}"))

    with tempfile.TemporaryDirectory() as home:
        async with await Pilot.open(Settings(home=Path(home))) as pilot:
            user, _ = await pilot.users.create("trace")
            session = (await pilot.session_for(user.id, None)).session_id
            # A partial, not a coroutine of ours: call_tool's coroutine is the first listed.
            run_block = functools.partial(
                pilot.call_tool,
                "run_block",
                arguments or ARGUMENTS,
                user_id=user.id,
                session_id=session,
            )
            await _profiled(run_block, profile, warm_ups=2)
    depth0 = min((depth for depth, _ in chain), default=0)  # the caller's own coroutines
    return [(depth - depth0, name) for depth, name in chain]


def main() -> None:
    if "--coroutines" in sys.argv:
        chain = asyncio.run(coroutine_chain())
        for depth, name in chain:
            print(f"{'  ' * depth}{name}")
        print(f"{len(chain)} coroutines")
        return
    results = asyncio.run(measure())
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
        return
    for door, files in results.items():
        print(f"{door}: {len(files)} files")
        for name, functions in files.items():
            print(f"  {name} ({len(functions)})")


if __name__ == "__main__":
    main()
