"""``blockpilot workspaces migrate --to URL``: copies what the target lacks, checks it,
records the backend; safe to run again and to resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from blockpilot.cli.app import app
from blockpilot.errors import ConfigurationError
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

FILES = {"notes/a.txt": b"alice's notes", "big.bin": bytes(range(256)) * 9000, "empty": b""}


async def _migrate(settings: Settings, to: str) -> Result:
    """The CLI in a thread: it runs its own event loop."""
    return await asyncio.to_thread(_migrate_now, settings, to)


def _migrate_now(settings: Settings, to: str) -> Result:
    env = {
        "BLOCKPILOT_HOME": str(settings.home),
        "BLOCKPILOT_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
        "BLOCKPILOT_DATABASE_URL": settings.effective_database_url,
        "BLOCKPILOT_WORKSPACE_URL": "file:",
    }
    return CliRunner().invoke(app, ["workspaces", "migrate", "--to", to, "--json"], env=env)


async def _seed(make_pilot) -> tuple[Settings, dict[str, str]]:
    pilot = await make_pilot(workspace_url="file:")
    users = {}
    for name in ("alice", "bob"):
        user, _ = await pilot.users.create(name)
        users[name] = user.id
        files = pilot.workspaces.for_workspace(
            await pilot.workspaces.get_or_create_workspace(user.id)
        )
        for path, data in FILES.items():
            await files.write(path, data + name.encode())
    settings = pilot.settings
    await pilot.close()
    return settings, users


async def _assert_files_on(settings: Settings, url: str, users: dict[str, str]) -> None:
    pilot = await Pilot.open(settings.model_copy(update={"workspace_url": url}))
    try:
        for name, user_id in users.items():
            files = pilot.workspaces.for_workspace(
                await pilot.workspaces.get_or_create_workspace(user_id)
            )
            for path, data in FILES.items():
                assert await files.read(path) == data + name.encode()
    finally:
        await pilot.close()


@pytest.mark.parametrize("target", ["database", "s3"])
async def test_migrate_copies_checks_and_switches(
    make_pilot, target: str, request: pytest.FixtureRequest
) -> None:
    url = f"s3://{request.getfixturevalue('s3_bucket')}/moved" if target == "s3" else "database:"
    settings, users = await _seed(make_pilot)
    with pytest.raises(ConfigurationError, match="workspaces migrate"):
        await Pilot.open(settings.model_copy(update={"workspace_url": url}))

    first = await _migrate(settings, url)
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout) == {
        "from": "file:",
        "to": url,
        "files": 6,
        "copied": 6,
        "already_there": 0,
        "damaged": [],
        "switched": True,
    }
    await _assert_files_on(settings, url, users)

    again = await _migrate(settings, url)  # idempotent: nothing left to copy
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["copied"] == 0
    assert json.loads(again.stdout)["already_there"] == 6


async def test_an_interrupted_migration_resumes_and_damage_stops_the_switch(make_pilot) -> None:
    settings, users = await _seed(make_pilot)
    root = settings.home / "workspaces"
    blobs = sorted(p for p in root.rglob("*") if p.is_file())
    saved = blobs[0].read_bytes()
    blobs[0].write_bytes(b"damaged")

    broken = await _migrate(settings, "database:")
    assert broken.exit_code != 0
    report = json.loads(broken.stdout)
    assert report["copied"] == 5 and len(report["damaged"]) == 1 and not report["switched"]
    assert "the backend was not switched" in broken.stderr
    with pytest.raises(ConfigurationError):  # still recorded on file:
        await Pilot.open(settings.model_copy(update={"workspace_url": "database:"}))

    Path(blobs[0]).write_bytes(saved)  # repaired: the next run copies only the rest
    resumed = await _migrate(settings, "database:")
    assert resumed.exit_code == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert (report["copied"], report["already_there"], report["switched"]) == (1, 5, True)
    await _assert_files_on(settings, "database:", users)


def test_a_bad_target_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["workspaces", "migrate", "--to", "ftp://nowhere"],
        env={"BLOCKPILOT_HOME": str(tmp_path)},
    )
    assert result.exit_code != 0
    assert "BLOCKPILOT_WORKSPACE_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
