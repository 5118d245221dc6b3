"""The direct SQLite paths: the execution-record writer and the API-key reader.

They exist for speed (see ``blockpilot.storage.sqlite_writer``); these tests pin what must not
change with them: a ``running`` row is committed before ``start`` returns, the loop never
waits for the write lock, errors reach their own caller, deferred final states are written,
and a revoked key stops working at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from blockpilot.redaction import REDACTED, Redactor, SecretRegistry, secret_forms
from blockpilot.storage.sqlite_writer import (
    CHECKPOINT_EVERY,
    SQLiteReader,
    SQLiteWriter,
    _json_text,
)

STATEMENTS = {
    "start": "INSERT INTO runs (id, status) VALUES (:id, 'running')",
    "finish": "UPDATE runs SET status = :status WHERE id = :id AND status = 'running'",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, status TEXT NOT NULL)")
    conn.commit()
    conn.close()
    return path


def _rows(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT id, status FROM runs").fetchall())
    finally:
        conn.close()


async def test_write_is_committed_before_it_returns(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    try:
        await writer.write("start", {"id": "a"})
        assert _rows(db) == {"a": "running"}  # another connection sees it at once
    finally:
        await writer.close()


async def test_deferred_writes_ride_along_and_are_flushed(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS, defer_seconds=30)
    try:
        await writer.write("start", {"id": "a"})
        writer.defer("finish", {"id": "a", "status": "completed"})
        assert _rows(db) == {"a": "running"}  # not yet: nobody waits for it
        await writer.write("start", {"id": "b"})  # committed in the same transaction
        assert _rows(db) == {"a": "completed", "b": "running"}
        writer.defer("finish", {"id": "b", "status": "failed"})
        await writer.barrier()
        assert _rows(db) == {"a": "completed", "b": "failed"}
    finally:
        await writer.close()


async def test_deferred_writes_are_written_after_the_delay(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS, defer_seconds=0.01)
    try:
        await writer.write("start", {"id": "a"})
        writer.defer("finish", {"id": "a", "status": "completed"})
        for _ in range(200):
            if _rows(db)["a"] == "completed":
                break
            await asyncio.sleep(0.01)
        assert _rows(db) == {"a": "completed"}
    finally:
        await writer.close()


async def test_a_failing_write_fails_alone(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    try:
        await writer.write("start", {"id": "a"})
        writer.defer("finish", {"id": "a", "status": "completed"})
        with pytest.raises(sqlite3.IntegrityError):
            await writer.write("start", {"id": "a"})  # duplicate primary key
        await writer.barrier()
        assert _rows(db) == {"a": "completed"}  # the deferred write in its batch still landed
    finally:
        await writer.close()


async def test_when_another_writer_holds_the_lock_the_loop_does_not_wait(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by "another process"
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not released.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    try:
        tick_task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await writer.write("start", {"id": "a"})  # waits on the writer thread, not the loop
        waited = time.perf_counter() - started
        await tick_task
        assert waited >= 0.25
        assert ticks >= 10  # the event loop kept running meanwhile
        assert _rows(db) == {"a": "running"}
    finally:
        await writer.close()
        holder.close()


async def test_many_concurrent_writes_all_commit(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    try:
        await asyncio.gather(*(writer.write("start", {"id": str(i)}) for i in range(300)))
        for i in range(300):
            writer.defer("finish", {"id": str(i), "status": "completed"})
        await writer.barrier()
        assert _rows(db) == {str(i): "completed" for i in range(300)}
    finally:
        await writer.close()


async def test_a_burst_of_writes_shares_one_commit(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    try:
        await asyncio.gather(*(writer.write("start", {"id": str(i)}) for i in range(100)))
        assert _rows(db) == {str(i): "running" for i in range(100)}
        # The first write of the loop iteration commits alone, the other 99 together.
        assert writer._inline_commits == 2
        await writer.write("start", {"id": "lone"})  # a later lone write commits at once
        assert writer._inline_commits == 3
    finally:
        await writer.close()


async def test_a_burst_of_barriers_shares_one_commit(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS, defer_seconds=30)
    try:
        await asyncio.gather(*(writer.write("start", {"id": str(i)}) for i in range(50)))
        before = writer._inline_commits

        async def finish(i: int) -> None:
            writer.defer("finish", {"id": str(i), "status": "completed"})
            await writer.barrier()
            assert _rows(db)[str(i)] == "completed"  # durable when the barrier returns

        await asyncio.gather(*(finish(i) for i in range(50)))
        assert writer._inline_commits - before == 2
    finally:
        await writer.close()


async def test_a_failing_write_in_a_burst_fails_alone(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS)
    try:
        await writer.write("start", {"id": "taken"})
        ids = ["a", "b", "taken", "c"]
        results = await asyncio.gather(
            *(writer.write("start", {"id": i}) for i in ids), return_exceptions=True
        )
        outcomes = [type(r).__name__ for r in results]
        assert outcomes == ["NoneType", "NoneType", "IntegrityError", "NoneType"]
        assert _rows(db) == dict.fromkeys(["taken", "a", "b", "c"], "running")
    finally:
        await writer.close()


async def test_close_flushes_and_the_writer_is_usable_again(db: Path) -> None:
    writer = SQLiteWriter(str(db), STATEMENTS, defer_seconds=30)
    await writer.write("start", {"id": "a"})
    writer.defer("finish", {"id": "a", "status": "completed"})
    await writer.close()
    assert _rows(db) == {"a": "completed"}
    await writer.write("start", {"id": "b"})
    await writer.close()
    assert _rows(db) == {"a": "completed", "b": "running"}


class _Pending:
    """The most writes made in a row while a checkpoint was queued or running.

    Writes go on while a checkpoint's first pass copies the WAL, so the WAL's high-water mark
    is one checkpoint interval plus those writes: bounded, but by how fast the disk is. A
    fixed bound failed on a CI machine busy with another test run (~700 writes landed during
    one first pass), so the tests bound the WAL by what was written meanwhile."""

    ROOM = 1.25
    """Later commits write more pages than the first ones the tests measure (B-tree splits):
    ~5% more once thousands of rows are in."""

    def __init__(self, writer: SQLiteWriter) -> None:
        self.writer = writer
        self.run = self.most = 0

    def count(self, writes: int) -> None:
        """Call before making *writes* writes."""
        if self.writer._checkpoints < self.writer._checkpoints_queued:
            self.run += writes
            self.most = max(self.most, self.run)
        else:
            self.run = 0

    async def all_completed(self) -> int:
        """Wait until every checkpoint queued has completed; how many there were."""
        for _ in range(10_000):
            if self.writer._checkpoints == self.writer._checkpoints_queued:
                return self.writer._checkpoints
            await asyncio.sleep(0.001)
        raise AssertionError("a queued checkpoint never completed")


async def test_the_wal_stays_bounded_under_steady_writes(db: Path) -> None:
    """Each checkpoint copies the whole WAL (its second pass holds writes back), so the next
    write starts it over. Before, frames appended during a checkpoint kept it from ever
    completing: the WAL grew by every commit (it does with the first pass alone)."""
    wal = Path(f"{db}-wal")
    writer = SQLiteWriter(str(db), STATEMENTS)
    pending = _Pending(writer)
    try:
        for i in range(100):
            await writer.write("start", {"id": f"first-{i}"})
        per_commit = wal.stat().st_size / 100
        for i in range(6 * CHECKPOINT_EVERY):
            pending.count(1)
            await writer.write("start", {"id": str(i)})
        # Every checkpoint completed (one that never did would count every later write as made
        # meanwhile, and the bound below would grow with them).
        assert await pending.all_completed() >= 5  # 6, fewer if writes went to the thread
        # One checkpoint interval, what was written while a checkpoint ran, and some room.
        assert wal.stat().st_size < (CHECKPOINT_EVERY + pending.most) * per_commit * pending.ROOM
        assert len(_rows(db)) == 100 + 6 * CHECKPOINT_EVERY
    finally:
        await writer.close()


async def test_the_wal_stays_bounded_under_group_commits(db: Path) -> None:
    """Bursts commit hundreds of rows at a time: checkpoints come every ``checkpoint_writes``
    writes too, not only every CHECKPOINT_EVERY commits (60 bursts of 200 rows are ~120
    commits: without it the WAL grew to ~77 MB here, with 2,000 it stayed at ~15 MB)."""
    wal = Path(f"{db}-wal")
    interval = 400
    writer = SQLiteWriter(str(db), STATEMENTS, checkpoint_writes=interval)
    pending = _Pending(writer)
    pad = "x" * 1_000  # rows big enough that the WAL grows with each one
    per_burst = 100

    async def burst(n: int) -> None:
        ids = [f"{n:03d}-{i:03d}-{pad}" for i in range(per_burst)]
        pending.count(per_burst)
        await asyncio.gather(*(writer.write("start", {"id": id_}) for id_ in ids))

    try:
        await burst(0)
        per_row = wal.stat().st_size / per_burst  # before any checkpoint
        for n in range(1, 30):
            await burst(n)
        await writer.barrier()
        assert writer._inline_commits < CHECKPOINT_EVERY
        assert await pending.all_completed() >= 5  # by writes: 3,000 rows, one per 400+
        assert len(_rows(db)) == 30 * per_burst
        # The WAL restarts after each checkpoint: it never holds much more than one interval
        # and what was written while a checkpoint ran (without the checkpoints by writes it
        # would hold all 3,000 rows). A checkpoint comes at the first commit past the interval.
        most = interval + per_burst + pending.most
        assert wal.stat().st_size < most * per_row * pending.ROOM
    finally:
        await writer.close()


async def test_writes_commit_inline_while_a_checkpoint_copies_the_wal(db: Path) -> None:
    """A checkpoint holds writes back only for its second pass (what was appended while the
    first copied), not for the whole copy and its fsyncs: a stall for every caller at once.
    Before, every write after the one that queued the checkpoint went behind it."""
    interval = CHECKPOINT_EVERY - 100  # the checkpoint comes by writes, after the last one
    writer = SQLiteWriter(str(db), STATEMENTS, checkpoint_writes=interval)
    pad = "x" * 4_000  # a WAL of ~10 MB for the first pass to copy
    try:
        for i in range(interval):  # the last one queues the checkpoint
            await writer.write("start", {"id": f"{i:04d}-{pad}"})
        inline_meanwhile = 0
        n = 0
        while writer._checkpoints == 0:
            before = writer._inline_commits
            await writer.write("start", {"id": f"meanwhile-{n}"})
            inline_meanwhile += writer._inline_commits - before
            n += 1
            assert n < 1_000_000, "the checkpoint never completed"
        assert inline_meanwhile > 0
        await writer.barrier()
        assert len(_rows(db)) == interval + n
    finally:
        await writer.close()


def test_reader_sees_every_commit_and_never_waits(db: Path) -> None:
    reader = SQLiteReader(str(db))
    other = sqlite3.connect(db, isolation_level=None)
    try:
        sql = "SELECT status FROM runs WHERE id = ?"
        assert reader.fetch_one(sql, ("a",)) is None
        other.execute("INSERT INTO runs VALUES ('a', 'running')")
        assert reader.fetch_one(sql, ("a",)) == ("running",)
        other.execute("BEGIN IMMEDIATE")  # a writer in progress does not block a WAL reader
        other.execute("UPDATE runs SET status = 'done' WHERE id = 'a'")
        assert reader.fetch_one(sql, ("a",)) == ("running",)
        other.execute("COMMIT")
        assert reader.fetch_one(sql, ("a",)) == ("done",)
        assert reader.fetch_one("SELECT nope FROM nowhere", ()) is SQLiteReader.UNAVAILABLE
    finally:
        reader.close()
        other.close()


async def test_a_revoked_api_key_stops_working_at_once(pilot, alice) -> None:  # type: ignore[no-untyped-def]
    key = await pilot.users.create_api_key(alice.id)
    assert (await pilot.users.user_for_api_key(key)) == alice
    assert await pilot.users.revoke_api_key(key)
    assert await pilot.users.user_for_api_key(key) is None
    assert await pilot.users.user_for_api_key("bp_unknown") is None


# -- the redactor's index (many secrets) gives what the plain loop gives ------------------


def _plain(secrets: list[str], text: str) -> str:
    forms = sorted(
        {f for s in secrets if len(s) >= 6 for f in secret_forms(s)}, key=lambda f: (-len(f), f)
    )
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return Redactor().scrub_text(text)  # then the secret shapes, as scrub_text does


def test_indexed_redaction_matches_the_plain_loop() -> None:
    import random

    rng = random.Random(42)
    alphabet = "abcAB01=+/_-[]REDACT"
    for _ in range(300):
        secrets = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 12))) for _ in range(80)
        ]
        secrets.append(secrets[0][:7] + "tail!")  # one secret overlapping another
        redactor = Redactor(secrets)
        assert redactor._index is not None  # many forms: the indexed path
        for _ in range(5):
            pieces = [
                rng.choice(secrets)
                if rng.random() < 0.4
                else "".join(rng.choice(alphabet + " ") for _ in range(9))
                for _ in range(rng.randint(0, 6))
            ]
            text = "".join(pieces)
            assert redactor.scrub_text(text) == _plain(secrets, text)


def test_secret_registry_keeps_the_newest() -> None:
    registry = SecretRegistry(capacity=100)
    secrets = [f"secret-{i:05d}-value" for i in range(300)]
    for secret in secrets:
        registry.add([secret])
    line = f"a {secrets[0]} b {secrets[-1]} c"
    assert registry.redactor.scrub_text(line) == f"a {secrets[0]} b {REDACTED} c"  # oldest evicted
    big = SecretRegistry()
    big.add([f"sk-{i:08d}-0123456789abcdef" for i in range(10_000)])
    for i in range(50):
        big.add([f"new-{i:08d}-0123456789abcdef"])
    assert big.redactor.scrub_text("x new-00000049-0123456789abcdef y") == f"x {REDACTED} y"
    assert big.redactor.scrub_text("x sk-00000007-0123456789abcdef y") == f"x {REDACTED} y"


async def test_a_value_that_cannot_be_stored_fails_its_caller_and_nothing_else(db: Path) -> None:
    def strict(params: object) -> object:
        if params["id"] == "bad":  # type: ignore[index]
            raise TypeError("not serialisable")
        return params

    writer = SQLiteWriter(str(db), STATEMENTS, {"start": strict})
    try:
        with pytest.raises(TypeError):
            await writer.write("start", {"id": "bad"})
        await writer.write("start", {"id": "good"})  # the inline connection is not stuck
        assert _rows(db) == {"good": "running"}
    finally:
        await writer.close()


async def test_a_keyed_deferred_write_is_replaced_while_queued_only(db: Path) -> None:
    writer = SQLiteWriter(
        str(db),
        {**STATEMENTS, "start_done": "INSERT INTO runs (id, status) VALUES (:id, :status)"},
        defer_seconds=30,
    )
    try:
        writer.defer("start", {"id": "a"}, key="a")
        assert _rows(db) == {}
        assert writer.replace_deferred("a", "start_done", {"id": "a", "status": "completed"})
        await writer.barrier()
        assert _rows(db) == {"a": "completed"}  # one INSERT, no running row in between
        writer.defer("start", {"id": "b"}, key="b")
        await writer.barrier()  # committed: too late to replace
        assert not writer.replace_deferred("b", "start_done", {"id": "b", "status": "failed"})
        assert _rows(db) == {"a": "completed", "b": "running"}
    finally:
        await writer.close()


@pytest.mark.parametrize(
    "value",
    [
        {"nan": float("nan"), "inf": float("inf"), "minus": float("-inf")},
        {"text": "é ☃ \u2028", "lone": "\ud800", "nested": [1, 2.5, None, True, {"k": []}]},
        None,
    ],
)
def test_json_parameters_read_back_as_json_dumps_wrote_them(value: object) -> None:
    import json

    assert repr(json.loads(_json_text(value))) == repr(json.loads(json.dumps(value)))
