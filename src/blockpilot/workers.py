"""The server processes of one machine that share a home (``blockpilot serve --workers N``).

Each worker has an id (12 random hex digits) and two files in ``BLOCKPILOT_HOME/run``
(a folder only the home's owner may open, 0700):

* ``<id>.lock``, held with an exclusive ``flock`` for the worker's whole life. The kernel
  releases it when the process dies, however it dies, so "can I take the lock?" answers
  "is that worker gone?" without trusting pids (which are reused) or clocks.
* ``<id>.sock``, a Unix socket on which the worker takes MCP requests forwarded by the
  other workers (docs/deployment.md#workers).

Files of dead workers are removed when a worker starts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import socket
from pathlib import Path

RUN_FOLDER = "run"
_ID = re.compile(r"[0-9a-f]{12}")
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its terminating NUL; keep a margin


def is_worker_id(text: str) -> bool:
    """True when *text* has the form of a worker id (so it is safe in a file name)."""
    return _ID.fullmatch(text) is not None


class Worker:
    """This process as one worker of the machine: its id, its liveness lock, its socket.

    Use :meth:`start` (after any ``fork``: a forked child would share the lock) and
    :meth:`close` when the process stops serving.
    """

    def __init__(self, run_folder: Path, worker_id: str, lock_fd: int) -> None:
        self.run_folder = run_folder
        self.id = worker_id
        self._lock_fd = lock_fd
        # Socket paths longer than sun_path are reached through this folder's descriptor.
        self._folder_fd = os.open(run_folder, os.O_RDONLY | os.O_DIRECTORY)
        self._listening: socket.socket | None = None

    @classmethod
    def start(cls, home: Path) -> Worker:
        """Take a fresh id and its lock in ``home/run``; remove files of dead workers."""
        folder = home / RUN_FOLDER
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)  # it may predate this version, or a umask may have widened it
        while True:
            worker_id = secrets.token_hex(6)
            # Locked before it is visible under its name: nobody may see it unlocked and
            # take the worker for dead.
            staging = folder / f".{worker_id}.lock.new"
            fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            target = folder / f"{worker_id}.lock"
            if target.exists():  # 48 random bits: only in theory
                os.close(fd)
                staging.unlink()
                continue
            os.rename(staging, target)
            break
        worker = cls(folder, worker_id, fd)
        worker.sweep()
        return worker

    def is_alive(self, worker_id: str) -> bool:
        """Whether the worker *worker_id* of this home is running (its lock is held)."""
        if worker_id == self.id:
            return True
        if not is_worker_id(worker_id):
            return False
        try:
            fd = os.open(self.run_folder / f"{worker_id}.lock", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also releases the shared lock, if taken
        return False

    def sweep(self) -> None:
        """Remove the lock and socket files of workers that are gone."""
        for lock in self.run_folder.glob("*.lock"):
            worker_id = lock.name.removesuffix(".lock")
            if is_worker_id(worker_id) and not self.is_alive(worker_id):
                with contextlib.suppress(FileNotFoundError):
                    (self.run_folder / f"{worker_id}.sock").unlink()
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()

    def socket_address(self, worker_id: str) -> str:
        """The address to connect to (or bind) for the Unix socket of *worker_id*."""
        if not is_worker_id(worker_id):
            raise ValueError("not a worker id")
        path = str(self.run_folder / f"{worker_id}.sock")
        if len(path.encode()) <= _MAX_SOCKET_PATH:
            return path
        return f"/proc/self/fd/{self._folder_fd}/{worker_id}.sock"  # Linux

    def listen(self) -> socket.socket:
        """This worker's Unix socket (0600 in the 0700 folder), bound and ready to serve."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = self.socket_address(self.id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
        sock.bind(address)
        os.chmod(self.run_folder / f"{self.id}.sock", 0o600)
        self._listening = sock
        return sock

    def close(self) -> None:
        """Remove this worker's files and release its lock (it is then seen as gone)."""
        for name in (f"{self.id}.sock", f"{self.id}.lock"):
            with contextlib.suppress(FileNotFoundError):
                (self.run_folder / name).unlink()
        if self._listening is not None:
            self._listening.close()
        for fd in (self._lock_fd, self._folder_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def unreachable(exc: OSError) -> bool:
    """True when connecting to a worker's socket failed because the worker is gone."""
    return exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR)


__all__ = ["RUN_FOLDER", "Worker", "is_worker_id", "unreachable"]
