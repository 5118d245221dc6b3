"""Workers of one machine (``serve --workers N``): ids, liveness by lock, Unix sockets.

A worker in another process is a real child process (``python -c``) that starts a
:class:`~blockpilot.workers.Worker` in the shared home and then waits; killing it with
SIGKILL is how a worker dies without cleaning up.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockpilot.workers import RUN_FOLDER, Worker, is_worker_id

CHILD = """
import sys, time
from pathlib import Path
from blockpilot.workers import Worker
worker = Worker.start(Path(sys.argv[1]))
worker.listen()
print(worker.id, flush=True)
time.sleep(600)
"""


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def start_child(home: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    worker_id = child.stdout.readline().strip()
    assert is_worker_id(worker_id), worker_id
    return child, worker_id


def test_each_worker_has_its_own_id_lock_and_socket_in_a_private_folder(
    tmp_path: Path, workers: list[Worker]
) -> None:
    home = tmp_path / "home"
    first, second = Worker.start(home), Worker.start(home)
    workers += [first, second]
    assert first.id != second.id and is_worker_id(first.id)
    folder = home / RUN_FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    first.listen()
    sock_path = folder / f"{first.id}.sock"
    assert stat.S_ISSOCK(sock_path.stat().st_mode)
    assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
    # Two workers of one process still see each other alive (one lock per open file).
    assert second.is_alive(first.id) and first.is_alive(second.id)
    assert not first.is_alive("0123456789ab")  # never started
    assert not first.is_alive("../../etc/x")  # not an id: never a path


def test_a_killed_worker_is_seen_gone_and_its_files_are_swept(
    tmp_path: Path, workers: list[Worker]
) -> None:
    home = tmp_path / "home"
    child, child_id = start_child(home)
    try:
        observer = Worker.start(home)
        workers.append(observer)
        assert observer.is_alive(child_id)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert not observer.is_alive(child_id)  # the kernel released its lock
        assert (home / RUN_FOLDER / f"{child_id}.sock").exists()  # left behind...
        workers.append(Worker.start(home))  # ...until the next worker starts
        assert not (home / RUN_FOLDER / f"{child_id}.sock").exists()
        assert not (home / RUN_FOLDER / f"{child_id}.lock").exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_stopped_worker_removes_its_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    worker = Worker.start(home)
    worker.listen()
    other = Worker.start(home)
    try:
        worker.close()
        assert not other.is_alive(worker.id)
        assert sorted(p.name for p in (home / RUN_FOLDER).iterdir()) == [f"{other.id}.lock"]
    finally:
        other.close()


def test_a_home_too_deep_for_a_socket_path_still_works(
    tmp_path: Path, workers: list[Worker]
) -> None:
    """Unix socket paths hold ~108 bytes; a deeper home is reached through the folder's
    descriptor (Linux)."""
    home = tmp_path / ("deep-" * 20) / "home"
    worker = Worker.start(home)
    workers.append(worker)
    assert len(str(home / RUN_FOLDER / f"{worker.id}.sock")) > 108
    listening = worker.listen()
    listening.listen()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(worker.socket_address(worker.id))
        accepted, _ = listening.accept()
        accepted.close()
    assert (home / RUN_FOLDER / f"{worker.id}.sock").exists()
