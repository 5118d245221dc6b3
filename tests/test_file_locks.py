"""File locks exclude every process of one machine (``serve --workers N`` without Redis).

A child process holds a key's lock; this process cannot take it; once the child is killed
(SIGKILL: no clean-up of its own) the kernel releases it and this process takes it. The
lock files name keys by hash only: a key (which may contain a credential id) is not on disk.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blockpilot.file_locks import FileLockManager

KEY = "oauth-refresh:cred-canary-3f9a"

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from blockpilot.file_locks import FileLockManager

    async def main():
        async with FileLockManager(Path(sys.argv[1])).hold(sys.argv[2]):
            print("held", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_lock_held_by_another_process_excludes_until_it_dies(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        manager = FileLockManager(directory)
        with pytest.raises(TimeoutError):
            async with manager.hold(KEY, timeout=0.2):
                pytest.fail("took a lock another process holds")
        async with manager.hold("another key", timeout=30):  # other keys are free
            pass
        child.kill()
        child.wait(30)
        async with manager.hold(KEY, timeout=30) as lease:
            assert lease.key == KEY
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert all(KEY not in p.name and "canary" not in p.name for p in directory.iterdir())


async def test_two_managers_and_tasks_of_one_process_take_turns(tmp_path: Path) -> None:
    first, second = FileLockManager(tmp_path), FileLockManager(tmp_path)
    order: list[str] = []

    async def worker(manager: FileLockManager, name: str) -> None:
        async with manager.hold(KEY, timeout=30):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(*(worker(m, f"{i}") for i, m in enumerate([first, second, first])))
    assert len(order) == 6
    for i in range(0, 6, 2):  # never two holders at once
        assert order[i].endswith(" in") and order[i + 1] == order[i].replace(" in", " out")
