"""Crashes (docs/security.md#reliability-promises) on a real ``blockpilot serve`` with SQLite.

The block under test writes a workspace file, notes that side effect in a log outside the
service, then sleeps. SIGKILL during ~50 concurrent runs: after a restart every record is
final (``completed`` or ``interrupted``), nothing ran twice and every file is whole.
SIGTERM during runs: they are drained (completed, answered), then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from blockpilot.credentials.crypto import KeyRing
from tests.reliability.rel_helpers import SLOW_WRITE_BLOCK_ID, Serve, base_env, cli, install_plugin

FINAL = {"completed", "failed", "timed_out", "cancelled", "interrupted"}


def _env(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    plugin = install_plugin(tmp_path / "plugin")
    side_effects = tmp_path / "side-effects.log"
    home = tmp_path / "home"
    env = base_env(
        home,
        KeyRing.generate_key(),
        BLOCKPILOT_RATE_LIMIT_PER_MINUTE="0",
        BLOCKPILOT_MAX_CONCURRENT_RUNS_PER_USER="0",
        BLOCKPILOT_PROCESS_LEASE_SECONDS="3",
        BP_SIDE_EFFECTS=str(side_effects),
        PYTHONPATH=os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH", "")])),
    )
    key = json.loads(cli(env, "users", "create", "runner").stdout)["api_key"]
    return env, side_effects, key


def _side_effects(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def _start_run(client: httpx.AsyncClient, tag: str, seconds: float) -> dict[str, Any] | None:
    try:
        response = await client.post(
            "/api/v1/tools/run_block",
            json={"block_id": SLOW_WRITE_BLOCK_ID, "input_data": {"tag": tag, "seconds": seconds}},
        )
    except httpx.TransportError:
        return None  # the server died under it
    return response.json()


@pytest.mark.slow
async def test_sigkill_during_50_runs_leaves_every_record_final_and_nothing_done_twice(
    tmp_path: Path,
) -> None:
    env, side_effects, key = _env(tmp_path)
    server = Serve(env, tmp_path / "serve-1.log")
    server.wait_ready()
    rng = random.Random(os.getpid())
    tags = [f"run{index:02d}" for index in range(50)]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers=headers,
        timeout=60,
        limits=httpx.Limits(max_connections=60),
    ) as client:
        runs = [asyncio.create_task(_start_run(client, tag, rng.uniform(0.2, 4.0))) for tag in tags]
        # Kill at a random moment once some runs have done their side effect.
        wanted = rng.randint(10, 40)
        deadline = time.monotonic() + 30
        while len(_side_effects(side_effects)) < wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(rng.uniform(0.3, 2.5))  # some runs finish, some are mid-sleep
        server.kill()
        answers = await asyncio.gather(*runs)
    answered = {a["outputs"]["done"][0] for a in answers if a and a.get("type") == "block_output"}
    before_restart = _side_effects(side_effects)
    assert 0 < len(before_restart) <= 50

    restarted = Serve(env, tmp_path / "serve-2.log")
    try:
        restarted.wait_ready()
        await asyncio.sleep(1.0)  # let anything that would re-run do so
        async with httpx.AsyncClient(
            base_url=restarted.base_url, headers=headers, timeout=30
        ) as client:
            records = (await client.get("/api/v1/executions", params={"limit": 500})).json()[
                "executions"
            ]
            listing = (
                await client.get("/api/v1/workspace/files", params={"prefix": "/crash"})
            ).json()["files"]
            contents = {}
            for item in listing:
                got = await client.get(f"/api/v1/workspace/files{item['path']}")
                assert got.status_code == 200, got.text  # whole and checksum-verified
                contents[item["path"]] = got.text
    finally:
        restarted.kill()
    after = _side_effects(side_effects)
    statuses = {r["input"]["tag"]: r["status"] for r in records}
    # every record is final, one per run that started, none left running
    assert all(status in FINAL for status in statuses.values()), statuses
    assert set(statuses.values()) <= {"completed", "interrupted"}, statuses
    assert len(records) == len(statuses)
    # nothing happened twice, and nothing re-ran after the restart
    assert len(after) == len(set(after)), "a side effect happened twice"
    assert after == before_restart, "something ran again after the restart"
    # every run the client saw complete did its side effect exactly once
    for tag in answered:
        assert after.count(tag) == 1
    # a run recorded completed did its side effect; an interrupted one at most once
    for tag, status in statuses.items():
        if status == "completed":
            assert tag in after
    # every file in the workspace is whole (the content is its tag), one per side effect
    for path, text in contents.items():
        assert text == Path(path).stem
    assert {Path(p).stem for p in contents} <= set(after)
    assert "interrupted" in statuses.values(), "the kill landed after every run had finished"
    print(
        f"SIGKILL after {len(before_restart)} side effects: "
        f"{sum(s == 'completed' for s in statuses.values())} completed, "
        f"{sum(s == 'interrupted' for s in statuses.values())} interrupted, "
        f"{len(records)} records, "
        f"{len(answered)} answered to the client"
    )
    # Known gap (not fixed here, see SECURITY.md): final states are written behind, in
    # batches, after the answer has gone out; a SIGKILL in that window leaves a run the
    # client saw complete recorded as "interrupted" (honest, but not the same outcome).
    acknowledged_but_interrupted = sorted(tag for tag in answered if statuses[tag] != "completed")
    # Regression: results were written behind the response, so a SIGKILL right after an
    # answer left runs the client saw complete recorded as 'interrupted'.
    assert not acknowledged_but_interrupted, acknowledged_but_interrupted


@pytest.mark.slow
async def test_sigterm_drains_running_executions_before_exiting(tmp_path: Path) -> None:
    env, side_effects, key = _env(tmp_path)
    server = Serve(env, tmp_path / "serve.log")
    server.wait_ready()
    tags = [f"drain{index}" for index in range(10)]
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, timeout=60
        ) as client:
            runs = [asyncio.create_task(_start_run(client, tag, 2.0)) for tag in tags]
            deadline = time.monotonic() + 20
            while len(_side_effects(side_effects)) < len(tags) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(_side_effects(side_effects)) == len(tags), "the runs did not all start"
            server.process.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*runs)
            late = None
            # refused (TransportError): the server is shutting down
            with contextlib.suppress(httpx.TransportError):
                late = await client.post(
                    "/api/v1/tools/run_block",
                    json={
                        "block_id": SLOW_WRITE_BLOCK_ID,
                        "input_data": {"tag": "late", "seconds": 0},
                    },
                )
        code = await asyncio.to_thread(server.process.wait, 30)
    finally:
        server.kill()
    assert code == 0, server.stderr()
    assert [a and a["type"] for a in answers] == ["block_output"] * len(tags), answers
    assert late is None or late.status_code >= 500 or "late" not in _side_effects(side_effects)
    # the records were completed, not interrupted
    restarted = Serve(env, tmp_path / "serve-2.log")
    try:
        restarted.wait_ready()
        async with httpx.AsyncClient(
            base_url=restarted.base_url, headers=headers, timeout=30
        ) as client:
            records = (await client.get("/api/v1/executions", params={"limit": 100})).json()[
                "executions"
            ]
    finally:
        restarted.kill()
    statuses = {r["input"]["tag"]: r["status"] for r in records}
    assert {statuses[tag] for tag in tags} == {"completed"}, statuses
    assert _side_effects(side_effects).count("drain0") == 1
    records_log = [
        json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")
    ]
    assert not [r for r in records_log if r.get("level") in ("error", "critical")]
