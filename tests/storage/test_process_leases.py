"""Only the runs of a process that is gone become ``interrupted`` (issue: scale-out).

Several processes share one database; each holds a lease renewed by a heartbeat. These run
on SQLite and on PostgreSQL: a crashed process's runs are interrupted at the next start (the
crash is seen at once on the same machine), a live process's runs never are, and a hung
process's runs are once its lease runs out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import func, insert, select

from blockpilot.pilot import Pilot
from blockpilot.storage.common import utcnow
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.leases import ProcessIdentity, is_local_process_gone, process_key
from blockpilot.storage.tables import executions, process_leases
from blockpilot.storage.users import User

Opener = Callable[..., Awaitable[Pilot]]


@pytest.fixture
async def open_pilot(settings_factory) -> AsyncIterator[Opener]:
    opened: list[Pilot] = []

    async def make(**overrides: object) -> Pilot:
        p = await Pilot.open(settings_factory(**overrides))
        opened.append(p)
        return p

    yield make
    for p in opened:
        await p.close()


async def _start_run(pilot: Pilot, user: User, name: str) -> str:
    session = await pilot.sessions.create(user.id)
    record_id = f"copilot-{session.session_id}-{name}"
    await pilot.executions.start(
        ExecutionRecord(
            id=record_id,
            user_id=user.id,
            session_id=session.session_id,
            block_id="b",
            block_name="B",
            status="running",
            started_at=utcnow(),
            input_redacted={},
        )
    )
    return record_id


async def _status(pilot: Pilot, user: User, record_id: str) -> str:
    record = await pilot.executions.get(user.id, record_id)
    assert record is not None
    return record.status


async def test_a_second_process_leaves_the_first_ones_runs_alone(
    pilot: Pilot, alice: User, open_pilot
) -> None:
    running = await _start_run(pilot, alice, "live")
    second = await open_pilot()
    assert await second.leases.interrupt_orphans() == 0
    assert await _status(second, alice, running) == "running"
    async with pilot.engine.connect() as conn:
        owner = await conn.scalar(
            select(executions.c.instance_id).where(executions.c.id == running)
        )
        leases = await conn.scalar(select(func.count()).select_from(process_leases))
    assert owner == pilot.leases.instance_id != second.leases.instance_id
    assert leases == 2


async def test_a_hung_process_loses_its_runs_when_its_lease_runs_out(
    open_pilot, settings_factory
) -> None:
    hung = await open_pilot(process_lease_seconds=1.5)
    user, _ = await hung.users.create("alice")
    stuck = await _start_run(hung, user, "stuck")
    hung._heartbeat.cancel()  # alive, but no longer renewing (hung, or cut off)
    watcher = await open_pilot(process_lease_seconds=1.5)
    own = await _start_run(watcher, user, "own")
    assert await _status(watcher, user, stuck) == "running"
    deadline = time.monotonic() + 10
    while await _status(watcher, user, stuck) == "running":
        assert time.monotonic() < deadline, "the watcher's heartbeat never interrupted the run"
        await asyncio.sleep(0.05)
    record = await watcher.executions.get(user.id, stuck)
    assert (
        record is not None and record.status == "interrupted" and record.error_code == "interrupted"
    )
    assert await _status(watcher, user, own) == "running"
    # The hung process finishing later does not overwrite what everyone was told.
    record.status, record.finished_at = "completed", utcnow()
    hung.executions.finish(record)
    await hung.executions.flush()
    assert await _status(watcher, user, stuck) == "interrupted"


async def test_a_killed_process_s_runs_are_interrupted_at_the_next_start(
    pilot: Pilot, alice: User, settings_factory, open_pilot
) -> None:
    """SIGKILL: no lease expiry to wait for on the same machine (lease: the default 30 s)."""
    settings = settings_factory()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update(
        BLOCKPILOT_HOME=str(settings.home),
        BLOCKPILOT_ENCRYPTION_KEYS=settings.encryption_keys[0].get_secret_value(),
        BLOCKPILOT_DATABASE_URL=settings.effective_database_url,
    )
    record_id = "copilot-killed-run"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, alice.id, record_id],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert await _status(pilot, alice, record_id) == "running"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert await _status(pilot, alice, record_id) == "running"  # nobody has looked yet
    restarted = await open_pilot()
    record = await restarted.executions.get(alice.id, record_id)
    assert record is not None and record.status == "interrupted"
    assert record.error_message == "The process running this block stopped before it finished"


async def test_closing_interrupts_its_own_unfinished_runs_and_frees_the_lease(
    open_pilot, settings_factory
) -> None:
    first = await open_pilot()
    user, _ = await first.users.create("alice")
    left = await _start_run(first, user, "left")
    await first.close()
    second = await open_pilot()
    assert await _status(second, user, left) == "interrupted"
    async with second.engine.connect() as conn:
        ids = (await conn.execute(select(process_leases.c.instance_id))).scalars().all()
    assert ids == [second.leases.instance_id]


async def test_runs_from_before_leases_are_interrupted_at_start(
    pilot: Pilot, alice: User, open_pilot
) -> None:
    session = await pilot.sessions.create(alice.id)
    async with pilot.engine.begin() as conn:
        await conn.execute(
            insert(executions).values(
                id="copilot-legacy",
                user_id=alice.id,
                session_id=session.session_id,
                block_id="b",
                block_name="B",
                status="running",
                is_dry_run=False,
                started_at=utcnow(),
                input_redacted={},
                credential_ids=[],
                instance_id=None,
            )
        )
    await open_pilot()
    assert await _status(pilot, alice, "copilot-legacy") == "interrupted"


def test_process_keys_tell_a_dead_process_from_a_live_one() -> None:
    me = process_key()
    if me is None:
        pytest.skip("no /proc here: only lease expiry can tell")
    assert not is_local_process_gone(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    key = process_key(child.pid)
    child.wait()
    assert key is not None and is_local_process_gone(key)
    # Another machine (or container): cannot tell from here, so not gone.
    assert not is_local_process_gone("other-boot/pid:[1]/1/1")
    assert not is_local_process_gone(None)
    identity = ProcessIdentity.current()
    assert identity.pid == os.getpid() and len(identity.instance_id) <= 64


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from blockpilot.pilot import Pilot
    from blockpilot.storage.common import utcnow
    from blockpilot.storage.executions import ExecutionRecord

    async def main():
        pilot = await Pilot.open()
        session = await pilot.sessions.create(sys.argv[1])
        await pilot.executions.start(ExecutionRecord(
            id=sys.argv[2], user_id=sys.argv[1], session_id=session.session_id, block_id="b",
            block_name="B", status="running", started_at=utcnow(), input_redacted={},
        ))
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)
