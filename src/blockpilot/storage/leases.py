"""Process leases: which blockpilot processes are alive, so only a dead one's runs are interrupted.

Every process (a ``Pilot``) holds a row in ``process_leases`` that a heartbeat renews every
``lease_seconds / 3``; each execution row names the process running it (``instance_id``).
A ``running`` execution becomes ``interrupted`` only when its process is gone:

* its lease expired (the process stopped renewing: killed, hung, or cut off from the
  database for longer than the lease), or
* the lease names a process on *this* machine (same boot and pid namespace) that no longer
  exists: then there is no need to wait for the lease to run out, which keeps the
  single-machine behaviour of a crashed process's runs becoming ``interrupted`` at the next
  start, or
* the row predates leases (``instance_id`` is NULL).

Expiry is judged by the database's clock on PostgreSQL (``now()``), so the machines' clocks
need not agree; SQLite is one machine, so its clock is the process's.

A process cut off from the database for longer than its lease may find its runs marked
``interrupted`` by another process; when it later finishes them, the final state is not
written over ``interrupted`` (the record stays honest: nobody could tell it was alive).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from blockpilot.storage.common import utcnow
from blockpilot.storage.tables import executions, process_leases

logger = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = "The process running this block stopped before it finished"
# Leases of dead processes are kept this long after expiry (to explain what happened), then deleted.
_FORGET_AFTER = timedelta(hours=1)
# Written out, not a bound parameter: ix_executions_status holds the running rows only, and
# PostgreSQL's generic plan of a prepared statement cannot use it for "status = $1".
_RUNNING = executions.c.status == literal_column("'running'")


# -- this process's identity -----------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _machine() -> str | None:
    """This boot of this machine and this pid namespace: where pids mean the same process."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}" if boot else None


def _process_state(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of *pid* from ``/proc``, or None if there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may contain spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_key(pid: int | None = None) -> str | None:
    """What identifies process *pid* (default: this one) across pid reuse, on Linux; else None."""
    pid = os.getpid() if pid is None else pid
    machine, state = _machine(), _process_state(pid)
    if machine is None or state is None:
        return None
    return f"{machine}/{pid}/{state[1]}"


def is_local_process_gone(key: str | None) -> bool:
    """True when *key* names a process of this machine (and pid namespace) that has ended.

    False when it is alive, or when this cannot be told from here (another machine, another
    container, no ``/proc``): then only the lease's expiry can tell.
    """
    parts = (key or "").split("/")
    machine = _machine()
    if (
        len(parts) != 4
        or machine is None
        or f"{parts[0]}/{parts[1]}" != machine
        or not parts[2].isdigit()
    ):
        return False
    state = _process_state(int(parts[2]))
    # A zombie has exited; only its parent has not collected it yet.
    return state is None or state[0] in ("Z", "X") or state[1] != parts[3]


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Who this process is, as written in its lease."""

    instance_id: str
    hostname: str
    pid: int
    process_key: str | None

    @classmethod
    def current(cls) -> ProcessIdentity:
        hostname = socket.gethostname() or "unknown"
        pid = os.getpid()
        return cls(
            instance_id=f"{hostname[:40]}-{pid}-{secrets.token_hex(4)}",
            hostname=hostname[:255],
            pid=pid,
            process_key=process_key(pid),
        )


# -- the store ---------------------------------------------------------------------------------


class ProcessLeases:
    """This process's lease, and the sweep that interrupts the runs of processes that are gone.

    Args:
        engine: The database.
        identity: This process.
        lease_seconds: How long a lease lasts without renewal; renew well within it.
    """

    def __init__(
        self, engine: AsyncEngine, identity: ProcessIdentity, lease_seconds: float
    ) -> None:
        self._engine = engine
        self.identity = identity
        self.lease_seconds = lease_seconds
        self._postgresql = engine.dialect.name == "postgresql"

    @property
    def instance_id(self) -> str:
        return self.identity.instance_id

    def _now(self) -> Any:
        """The database's clock on PostgreSQL; this process's on SQLite (one machine)."""
        if self._postgresql:
            return func.now()
        return literal(utcnow(), DateTime(timezone=True))

    def _later(self, delta: timedelta) -> Any:
        if self._postgresql:
            return func.now() + delta
        return literal(utcnow() + delta, DateTime(timezone=True))

    async def renew(self) -> None:
        """Create or extend this process's lease."""
        lease = timedelta(seconds=self.lease_seconds)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(process_leases)
                .where(process_leases.c.instance_id == self.instance_id)
                .values(renewed_at=self._now(), expires_at=self._later(lease))
            )
            if not result.rowcount:
                await conn.execute(
                    insert(process_leases).values(
                        instance_id=self.instance_id,
                        hostname=self.identity.hostname,
                        pid=self.identity.pid,
                        process_key=self.identity.process_key,
                        started_at=self._now(),
                        renewed_at=self._now(),
                        expires_at=self._later(lease),
                    )
                )

    async def release(self) -> None:
        """Give the lease up (clean shutdown), after :meth:`interrupt_own`."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(process_leases).where(process_leases.c.instance_id == self.instance_id)
            )

    async def expires_at(self) -> datetime | None:
        async with self._engine.connect() as conn:
            return await conn.scalar(
                select(process_leases.c.expires_at).where(
                    process_leases.c.instance_id == self.instance_id
                )
            )

    async def interrupt_orphans(self) -> int:
        """Mark ``interrupted`` the ``running`` executions of processes that are gone; how many."""
        async with self._engine.begin() as conn:
            local = (
                await conn.execute(
                    select(process_leases.c.instance_id, process_leases.c.process_key).where(
                        process_leases.c.instance_id != self.instance_id,
                        process_leases.c.process_key.is_not(None),
                    )
                )
            ).all()
            gone = [row.instance_id for row in local if is_local_process_gone(row.process_key)]
            if gone:
                # Dead for sure: expire their leases now rather than when they run out.
                await conn.execute(
                    update(process_leases)
                    .where(process_leases.c.instance_id.in_(gone))
                    .values(expires_at=self._now())
                )
            live_owner = exists().where(
                process_leases.c.instance_id == executions.c.instance_id,
                process_leases.c.expires_at > self._now(),
            )
            result = await conn.execute(
                update(executions)
                .where(_RUNNING, or_(executions.c.instance_id.is_(None), ~live_owner))
                .values(
                    status="interrupted",
                    finished_at=utcnow(),
                    error_code="interrupted",
                    error_message=INTERRUPTED_MESSAGE,
                )
                .execution_options(synchronize_session=False)
            )
            await conn.execute(
                delete(process_leases).where(
                    and_(
                        process_leases.c.instance_id != self.instance_id,
                        process_leases.c.expires_at < self._later(-_FORGET_AFTER),
                    )
                )
            )
        return int(result.rowcount or 0)

    async def interrupt_own(self) -> int:
        """At shutdown: interrupt this process's runs still ``running`` after the last flush."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(executions)
                .where(_RUNNING, executions.c.instance_id == self.instance_id)
                .values(
                    status="interrupted",
                    finished_at=utcnow(),
                    error_code="interrupted",
                    error_message=INTERRUPTED_MESSAGE,
                )
            )
        return int(result.rowcount or 0)
