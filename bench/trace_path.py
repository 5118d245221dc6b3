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

Run: ``python -m bench.trace_path`` (prints both lists; ``--json`` for one JSON document).
"""

from __future__ import annotations

import asyncio
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

    await call()  # warm-up: lazy imports and first-time caches are not the path
    sys.setprofile(profile)
    try:
        await call()
    finally:
        sys.setprofile(None)
    return dict(seen)


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


def main() -> None:
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
