"""5. Scale: many users' credentials, many concurrent runs, and what grows with them.

* Credential resolution with 20 credentials per user (API keys, OAuth2 tokens, SMTP
  passwords, host-scoped headers; 3 of them OpenAI keys, so matching has to choose) at
  100, 1,000 and 10,000 users. Seeding writes the rows in bulk with the store's own
  encryption (AES-256-GCM, associated data bound to user and credential). Measured for
  random users: *resolve* = the user's candidates (metadata query), matching for an
  OpenAI ``api_key`` field, then reading and decrypting the chosen credential; and a whole
  ``run_block`` of a block needing that key. Each sampled user is measured twice: the first
  time their secrets are new to the process, the second time they are not.
* What grows with the users served: the process-wide set of secrets that log lines are
  scrubbed of (capped at 10,000); the cost of one log record is measured against it.
* 1,000 concurrent ``run_block`` calls of a block that sleeps 100 ms: wall time / 0.1 s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
import uuid
from typing import Any

from bench.blocks import BenchApiKeyBlock, BenchSleepBlock, bench_registry
from bench.common import Samples, open_pilot
from blockpilot.credentials.matching import (
    discriminated_requirements,
    match_credentials_to_requirements,
)
from blockpilot.credentials.models import (
    APIKeyCredentials,
    Credentials,
    HostScopedCredentials,
    OAuth2Credentials,
    UserPasswordCredentials,
)
from blockpilot.redaction import SECRETS
from blockpilot.storage.common import utcnow
from blockpilot.storage.credentials import _columns
from blockpilot.storage.tables import credentials as credentials_table
from blockpilot.storage.tables import users as users_table

CREDENTIALS_PER_USER = 20
SCALES = (100, 1_000, 10_000)


class _FullCollections:
    """Time spent in CPython's full (generation 2) garbage collections inside the block."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> _FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def _user_credentials(rng: random.Random) -> list[Credentials]:
    def token(prefix: str = "") -> str:
        return prefix + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)
        )

    creds: list[Credentials] = []
    for i in range(3):
        creds.append(
            APIKeyCredentials(provider="openai", api_key=token("sk-"), title=f"OpenAI {i}")
        )
    for i in range(2):
        creds.append(
            APIKeyCredentials(provider="anthropic", api_key=token("sk-ant-"), title=f"Claude {i}")
        )
    for i in range(3):
        creds.append(
            OAuth2Credentials(
                provider="github",
                access_token=token("gho_"),
                refresh_token=token(),
                scopes=["repo"],
                title=f"GitHub {i}",
            )
        )
    for i in range(3):
        creds.append(
            OAuth2Credentials(
                provider="google",
                access_token=token("ya29."),
                scopes=["gmail.send"],
                title=f"Google {i}",
            )
        )
    for i in range(3):
        creds.append(
            UserPasswordCredentials(
                provider="smtp", username=f"user{i}@example.com", password=token()
            )
        )
    for i in range(CREDENTIALS_PER_USER - len(creds)):
        creds.append(
            HostScopedCredentials(
                provider="http",
                host=f"api{i}.example.com",
                headers={"Authorization": f"Bearer {token()}"},
            )
        )
    return creds


async def _seed(pilot: Any, start: int, stop: int, rng: random.Random) -> list[str]:
    """Users *start*..*stop*-1 with their credentials, in bulk; their ids."""
    store = pilot.credential_store
    now = utcnow()
    user_rows = [
        {"id": str(uuid.UUID(int=(0xBE << 120) + i)), "name": f"user{i:05d}", "created_at": now}
        for i in range(start, stop)
    ]
    cred_rows: list[dict[str, Any]] = []
    for row in user_rows:
        for creds in _user_credentials(rng):
            token, key_id = store._encrypt(row["id"], creds)
            cred_rows.append(
                {
                    "id": creds.id,
                    "user_id": row["id"],
                    "secret": token,
                    "key_id": key_id,
                    "is_default": False,
                    "needs_reauth": False,
                    "created_at": now,
                    "updated_at": now,
                    "last_used_at": None,
                    **_columns(creds),
                }
            )
    async with pilot.engine.begin() as conn:
        await conn.execute(users_table.insert(), user_rows)
        for i in range(0, len(cred_rows), 5000):
            await conn.execute(credentials_table.insert(), cred_rows[i : i + 5000])
    return [row["id"] for row in user_rows]


def _log_record_us(repeats: int = 200) -> float:
    """Creating one log record (with the process's secret scrubbing), in µs."""
    logger = logging.getLogger("blockpilot.bench.scale")
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    for _ in range(repeats):
        logger.info(
            "POST /api/v1/tools/run_block 200 1.2ms", extra={"path": "/api/v1/tools/run_block"}
        )
    return (time.perf_counter() - started) / repeats * 1e6


def _secret_registry_costs() -> dict[str, Any]:
    """The process-wide secret registry once N users' secrets were seen (one key each).

    Every decrypted credential's secrets are added (so log lines never show them); every log
    record is scrubbed of all of them. Measured on a fresh registry filled to N.
    """
    from blockpilot.redaction import SecretRegistry

    rng = random.Random(5)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    line = "POST /api/v1/tools/run_block 200 1.2ms"
    costs: dict[str, Any] = {}
    for n in SCALES:
        registry = SecretRegistry()
        registry.add(["sk-" + "".join(rng.choice(alphabet) for _ in range(40)) for _ in range(n)])
        new = ["sk-" + "".join(rng.choice(alphabet) for _ in range(40)) for _ in range(20)]
        t0 = time.perf_counter()
        for secret in new:
            registry.add([secret])
        add_us = (time.perf_counter() - t0) / len(new) * 1e6
        redactor = registry.redactor
        batches = []
        for _ in range(5):  # the median of 5 batches: one noisy batch does not decide
            t0 = time.perf_counter()
            for _ in range(40):
                redactor.scrub_text(line)
            batches.append((time.perf_counter() - t0) / 40 * 1e6)
        scrub_us = sorted(batches)[2]
        costs[str(n)] = {"add_one_secret_us": add_us, "scrub_log_line_us": scrub_us}
    return costs


async def run(*, quick: bool) -> dict[str, Any]:
    rng = random.Random(3)
    sample_size = 100 if quick else 300
    results: dict[str, Any] = {"credentials_per_user": CREDENTIALS_PER_USER, "by_users": {}}
    block = BenchApiKeyBlock
    async with open_pilot(bench_registry()) as pilot:
        requirements = discriminated_requirements(block.Input.credentials_fields(), {}, {})
        seeded: list[str] = []
        for scale in SCALES:
            started = time.perf_counter()
            seeded += await _seed(pilot, len(seeded), scale, rng)
            seed_s = time.perf_counter() - started
            sample = rng.sample(seeded, min(sample_size, len(seeded)))
            sessions = {uid: (await pilot.session_for(uid, None)).session_id for uid in sample}
            row: dict[str, Any] = {
                "seed_s": seed_s,
                "credential_rows": len(seeded) * CREDENTIALS_PER_USER,
            }
            for label in ("first", "repeat"):
                resolve, run_block = Samples(), Samples()
                for uid in sample:
                    t0 = time.perf_counter()
                    candidates = await pilot.credentials.candidates(uid)
                    match = match_credentials_to_requirements(
                        candidates, requirements, {}, for_execution=True
                    )
                    creds = await pilot.credentials.get(uid, match.matched["credentials"].id)
                    resolve.values.append(time.perf_counter() - t0)
                    assert creds is not None
                for uid in sample:
                    t0 = time.perf_counter()
                    response = await pilot.call_tool(
                        "run_block",
                        {"block_id": block.id, "input_data": {"text": "hi"}},
                        user_id=uid,
                        session_id=sessions[uid],
                    )
                    run_block.values.append(time.perf_counter() - t0)
                    if response.type != "block_output":
                        raise RuntimeError(f"run_block failed at scale: {response.to_json()[:300]}")
                row[f"resolve_{label}"] = resolve.summary()
                row[f"run_block_api_key_{label}"] = run_block.summary()
            row["secrets_known_to_process"] = len(SECRETS._values)
            row["log_record_us"] = _log_record_us()
            results["by_users"][str(scale)] = row

        results["secret_registry"] = _secret_registry_costs()

        # 1,000 concurrent runs of a block that sleeps 100 ms.
        user, _ = await pilot.users.create("sleeper")
        session = (await pilot.session_for(user.id, None)).session_id
        args = {"block_id": BenchSleepBlock.id, "input_data": {"seconds": 0.1}}
        await pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
        count = 1000
        walls: list[float] = []
        full_gc_s: list[float] = []
        ok = count
        for _ in range(3):  # three bursts; the median is reported
            with _FullCollections() as collections:
                started = time.perf_counter()
                responses = await asyncio.gather(
                    *(
                        pilot.call_tool("run_block", args, user_id=user.id, session_id=session)
                        for _ in range(count)
                    )
                )
                walls.append(time.perf_counter() - started)
            full_gc_s.append(collections.seconds)
            ok = min(ok, sum(1 for r in responses if r.type == "block_output"))
        middle = sorted(range(3), key=lambda i: walls[i])[1]
        wall = walls[middle]
        results["concurrent_sleep"] = {
            "calls": count,
            "completed": ok,
            "sleep_s": 0.1,
            "wall_s": wall,
            "wall_s_each": walls,
            "wall_over_sleep": wall / 0.1,
            # CPython's full (generation 2) collections inside each burst: they walk the whole
            # heap of this process, which the sections before have filled.
            "full_gc_s": full_gc_s[middle],
            "full_gc_s_each": full_gc_s,
        }
    return results
