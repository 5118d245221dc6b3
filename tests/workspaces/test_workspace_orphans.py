"""Orphan blobs: a writer killed (``SIGKILL``) after storing a new blob but before its file's
row names it leaves data nobody names. It is never visible, and it is swept — by
``blockpilot workspaces sweep`` once it is older than ``--min-age``, and by a server start once
the dead writer's hold has run out — while a blob still being uploaded is left alone."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blockpilot.cli.app import app
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.workspaces.blobs import one_piece
from tests.workspace_backends import expire_holds, live_holds, stored_blobs

pytestmark = pytest.mark.workspace_backends

# The first half of a write, as WorkspaceFiles.write_stream does it: the whole new blob is
# stored; then the process dies before the file's row is switched to it.
_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from blockpilot.pilot import Pilot

    async def main():
        pilot = await Pilot.open()
        workspace = await pilot.workspaces.get_or_create_workspace(sys.argv[1])
        writer = await pilot.workspaces.blobs.writer(workspace.id, sys.argv[2])
        for _ in range(3):
            await writer.write(os.urandom(1024 * 1024))
        await writer.commit()
        print("uploaded", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def _env(settings: Settings) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("AWS_", "PATH", "HOME", "LANG")) or k == "PYTHONPATH"
    }
    env.update(
        BLOCKPILOT_HOME=str(settings.home),
        BLOCKPILOT_ENCRYPTION_KEYS=",".join(k.get_secret_value() for k in settings.encryption_keys),
        BLOCKPILOT_DATABASE_URL=settings.effective_database_url,
        BLOCKPILOT_WORKSPACE_URL=settings.effective_workspace_url,
    )
    return env


async def _kill_after_upload(settings: Settings, user_id: str, blob: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, user_id, blob],
        env=_env(settings),
        stdout=subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == b"uploaded"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]


async def _sweep(settings: Settings, *args: str) -> dict[str, object]:
    def run() -> dict[str, object]:
        result = CliRunner().invoke(
            app, ["workspaces", "sweep", "--json", *args], env=_env(settings)
        )
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    return await asyncio.to_thread(run)


@pytest.mark.slow
async def test_a_writer_killed_before_the_row_switch_leaves_an_orphan_that_is_swept(
    make_pilot, workspace_url: str, workspace_backend: str
) -> None:
    pilot: Pilot = await make_pilot(workspace_url=workspace_url)
    user, _ = await pilot.users.create("alice")
    files = pilot.workspaces.for_workspace(await pilot.workspaces.get_or_create_workspace(user.id))
    await files.write("victim.bin", b"the previous version")

    await _kill_after_upload(pilot.settings, user.id, secrets.token_hex(16))
    assert await files.read("victim.bin") == b"the previous version"
    assert [f.path for f in await files.list()] == ["/victim.bin"]
    assert await stored_blobs(pilot) == 2  # the orphan: complete, named by nothing

    # Young blobs are left alone: an upload may be about to name them.
    assert await _sweep(pilot.settings) == {"backend": workspace_url, "removed": 0}
    assert await stored_blobs(pilot) == 2
    if workspace_backend != "file":
        # However old, a blob still held by its (as far as anyone knows, live) writer stays.
        assert await _sweep(pilot.settings, "--min-age", "0") == {
            "backend": workspace_url,
            "removed": 0,
        }
        assert await live_holds(pilot) == 1
        # Once the dead writer's hold has run out, the next server to start removes it.
        await expire_holds(pilot)
        restarted = await make_pilot(workspace_url=workspace_url)
        assert await stored_blobs(restarted) == 1
        assert await live_holds(pilot) == 0
    else:
        assert await _sweep(pilot.settings, "--min-age", "0") == {
            "backend": workspace_url,
            "removed": 1,
        }
    assert await stored_blobs(pilot) == 1
    assert await files.read("victim.bin") == b"the previous version"
    assert await _sweep(pilot.settings, "--min-age", "0") == {
        "backend": workspace_url,
        "removed": 0,
    }


async def test_the_sweep_removes_old_blobs_that_nothing_names_or_holds(
    make_pilot, workspace_url: str
) -> None:
    pilot: Pilot = await make_pilot(workspace_url=workspace_url)
    user, _ = await pilot.users.create("alice")
    workspace = await pilot.workspaces.get_or_create_workspace(user.id)
    files = pilot.workspaces.for_workspace(workspace)
    await files.write("kept.txt", b"named by a file")
    # Blobs put on the backend itself, with no row and no hold: as a server killed before
    # holds existed, or before it removed a replaced blob, would leave them.
    backend = getattr(pilot.workspaces.blobs, "inner", pilot.workspaces.blobs)
    for _ in range(2):
        await backend.put(workspace.id, secrets.token_hex(16), one_piece(b"orphan" * 1000))
    assert await stored_blobs(pilot) == 3

    assert await _sweep(pilot.settings) == {"backend": workspace_url, "removed": 0}  # young
    assert await _sweep(pilot.settings, "--min-age", "0") == {
        "backend": workspace_url,
        "removed": 2,
    }
    assert await stored_blobs(pilot) == 1
    assert await files.read("kept.txt") == b"named by a file"
