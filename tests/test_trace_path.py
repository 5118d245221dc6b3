"""The path of one run_block, as a newcomer follows it (``python -m bench.trace_path``).

Not a count to keep under a number (other work adds files for good reasons), but the
decisions docs/architecture.md says are made in one place, checked on the path itself.
"""

from __future__ import annotations

from bench.trace_path import ARGUMENTS, coroutine_chain, measure


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


async def test_the_usual_run_starts_no_coroutine_it_does_not_need() -> None:
    """A call the gate allows, without an idempotency key, of a block without credentials
    fields whose outputs fit: no _gated around the run, no _match, no _cap_outputs (each a
    coroutine per call; _gated one more held by every run in flight, docs/performance.md)."""
    chain = await coroutine_chain()
    names = [name for _, name in chain]
    for skipped in ("_gated", "_match", "_cap_outputs"):
        assert f"runner.py:BlockRunner.{skipped}" not in names
    # The block's outputs are collected straight under the run, the run under the tool.
    depth = dict((name, depth) for depth, name in chain)
    assert depth["blocks/base.py:Block.collect_into"] == depth["runner.py:BlockRunner._execute"] + 1
    assert depth["runner.py:BlockRunner._execute"] == depth["runner.py:BlockRunner.run"] + 1
    # With an idempotency key the gate's fence is on the way (and the measure sees it).
    keyed = await coroutine_chain({**ARGUMENTS, "idempotency_key": "trace-1"})
    assert "runner.py:BlockRunner._gated" in [name for _, name in keyed]
