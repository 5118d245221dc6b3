"""1. In-process overhead: run_block vs the raw block call vs LangChain and the MCP SDK.

Every variant does the same work (``echo(text)``) and is timed call by call in
alternating rounds:

* ``raw block run`` — ``block.run(typed_input)`` iterated by hand: the floor;
* ``LangChain StructuredTool.ainvoke`` — argument validation, callbacks, the call;
* ``MCP SDK MCPServer.call_tool`` — argument validation, the call, result conversion
  (in process: no transport, no session);
* ``blockpilot run_block`` — ``pilot.call_tool("run_block", ...)``: session check, the
  ordered checks of docs/architecture.md, input validation, credential matching, a durable
  ``running`` execution record committed to SQLite before the block starts, output
  validation and redaction, the final state written behind;
* ``blockpilot run_block (write effect)`` — the same echo declared as a ``write`` block: its
  ``running`` record is committed before it starts (the echo above is a ``read`` block, whose
  record is committed once, finished, before the call answers);
* ``blockpilot run_block (api_key)`` — the same with the user's API key matched, read and
  decrypted (AES-256-GCM) for the run;
* ``blockpilot run_block, engine writes`` — run_block with the execution record written
  through SQLAlchemy + aiosqlite, as before this change (and as on PostgreSQL today).

Besides the latencies, the process CPU time per call of run_block and of the MCP SDK's call
(alternating rounds; ``cpu_us_per_call``, ``run_block_cpu_over_mcp``): on a shared machine
it moves less than the latencies do.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.blocks import (
    BenchApiKeyBlock,
    BenchEchoBlock,
    BenchWriteEchoBlock,
    EchoArgs,
    bench_registry,
    echo,
)
from bench.common import measure_interleaved, open_pilot

RAW = "raw block run"
LANGCHAIN = "LangChain StructuredTool.ainvoke"
MCP = "MCP SDK MCPServer.call_tool"
RUN_BLOCK = "blockpilot run_block"
RUN_BLOCK_KEY = "blockpilot run_block (api_key)"
RUN_BLOCK_WRITE = "blockpilot run_block (write effect)"
RUN_BLOCK_ENGINE = "blockpilot run_block, engine writes (before)"


def _langchain_tool() -> Any:
    try:
        from langchain_core.tools import StructuredTool
    except ImportError:
        return None
    return StructuredTool.from_function(
        coroutine=echo, name="echo", description="Echo a text back", args_schema=EchoArgs
    )


def _mcp_server() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench", warn_on_duplicate_tools=False)
    server.tool(name="echo", description="Echo a text back")(echo)
    return server


async def run(*, quick: bool, profile_to: Path | None = None) -> dict[str, Any]:
    rounds, per_round, warmup = (4, 500, 300) if quick else (10, 1000, 1000)
    registry = bench_registry()
    async with open_pilot(registry) as pilot, open_pilot(bench_registry()) as engine_pilot:
        user, _ = await pilot.users.create("bench")
        session = (await pilot.session_for(user.id, None)).session_id
        await pilot.add_credentials(
            user.id,
            {"provider": "openai", "type": "api_key", "api_key": "sk-bench-0123456789abcdef"},
        )
        engine_user, _ = await engine_pilot.users.create("bench")
        engine_session = (await engine_pilot.session_for(engine_user.id, None)).session_id
        # The "before" path: the same store without its dedicated SQLite writer.
        engine_available = hasattr(engine_pilot.executions, "_writer")
        if engine_available:
            engine_pilot.executions._writer = None

        block = registry.get(BenchEchoBlock.id)
        assert block is not None
        typed = block.Input(text="hi")
        echo_args = {"block_id": BenchEchoBlock.id, "input_data": {"text": "hi"}}
        key_args = {"block_id": BenchApiKeyBlock.id, "input_data": {"text": "hi"}}
        write_args = {"block_id": BenchWriteEchoBlock.id, "input_data": {"text": "hi"}}

        # Fail loudly, not fast, if a run does not complete.
        for args in (echo_args, key_args, write_args):
            response = await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
            if response.type != "block_output":
                raise RuntimeError(f"bench run_block did not run: {response.to_json()[:500]}")

        async def raw() -> None:
            async for _ in block.run(typed):
                pass

        async def run_block() -> None:
            await pilot.call_tool("run_block", echo_args, user_id=user.id, session_id=session)

        async def run_block_key() -> None:
            await pilot.call_tool("run_block", key_args, user_id=user.id, session_id=session)

        async def run_block_write() -> None:
            await pilot.call_tool("run_block", write_args, user_id=user.id, session_id=session)

        async def run_block_engine() -> None:
            await engine_pilot.call_tool(
                "run_block", echo_args, user_id=engine_user.id, session_id=engine_session
            )

        variants: dict[str, Any] = {RAW: raw}
        tool = _langchain_tool()
        if tool is not None:
            variants[LANGCHAIN] = lambda: tool.ainvoke({"text": "hi"})
        server = _mcp_server()
        variants[MCP] = lambda: server.call_tool("echo", {"text": "hi"})
        variants[RUN_BLOCK] = run_block
        variants[RUN_BLOCK_WRITE] = run_block_write
        variants[RUN_BLOCK_KEY] = run_block_key
        if engine_available:
            variants[RUN_BLOCK_ENGINE] = run_block_engine
        samples = await measure_interleaved(
            variants, rounds=rounds, per_round=per_round, warmup=warmup
        )
        cpu = await _cpu_per_call(
            {RUN_BLOCK: run_block, MCP: variants[MCP]}, rounds=rounds, per_round=per_round
        )
        profile = None
        if profile_to is not None:
            profile = await _profile(run_block, profile_to, calls=3000 if quick else 10000)

    results = {name: s.summary() for name, s in samples.items()}
    ours = results[RUN_BLOCK]["p50_us"]
    ratios = {
        name: ours / r["p50_us"]
        for name, r in results.items()
        if name != RUN_BLOCK and r["p50_us"] > 0
    }
    return {
        "variants": results,
        "run_block_p50_over": ratios,
        # CPU time per call (this process, all threads: the SQLite writer's too), and
        # run_block's over the MCP SDK's: steadier than latencies on a shared machine.
        "cpu_us_per_call": cpu,
        "run_block_cpu_over_mcp": cpu[RUN_BLOCK] / cpu[MCP] if cpu[MCP] > 0 else None,
        "langchain_installed": tool is not None,
        "profile": profile,
    }


async def _cpu_per_call(
    variants: dict[str, Any], *, rounds: int, per_round: int
) -> dict[str, float]:
    """Median over alternating rounds of each variant's process CPU time per call, in µs."""
    per_round_us: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            started = time.process_time()
            for _ in range(per_round):
                await call()
            per_round_us[name].append((time.process_time() - started) / per_round * 1e6)
    return {name: statistics.median(values) for name, values in per_round_us.items()}


async def _profile(call: Any, path: Path, *, calls: int) -> str:
    """pyinstrument over many run_block calls; the text report is saved to *path*."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed (pip install -e '.[bench]')"
    profiler = Profiler(interval=0.0001, async_mode="enabled")
    profiler.start()
    for _ in range(calls):
        await call()
    profiler.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return str(path)
