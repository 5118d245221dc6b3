"""The path of one run_block, as a newcomer follows it (``python -m bench.trace_path``).

Not a count to keep under a number (other work adds files for good reasons), but the
decisions docs/architecture.md says are made in one place, checked on the path itself.
"""

from __future__ import annotations

from bench.trace_path import measure


async def test_one_run_passes_each_decision_once_and_nothing_it_does_not_need() -> None:
    paths = await measure()
    assert set(paths) == {"mcp", "http"}
    for door, files in paths.items():
        # The wrapper every tool call passes is Pilot.run_call; the tool is its body only.
        assert "Pilot.run_call" in files["pilot.py"], door
        assert files["tools/run_block.py"] == ["RunBlockTool.run", "RunBlockTool.time_limit"]
        assert files["tools/base.py"] == ["ToolCall.signed_in"], door
        # No MCP source: the MCP session modules are not on the way.
        assert not [f for f in files if f.startswith("sources/mcp/")], door
        # CalculatorBlock uses no credentials: no credential store call.
        assert "storage/credentials.py" not in files, door
