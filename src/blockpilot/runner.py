"""run_block as a use case: the ordered checks (docs/architecture.md) and the audited run."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic_core import to_json, to_jsonable_python

from blockpilot.approvals.gate import ApprovalGate, call_digest
from blockpilot.approvals.policy import Decision, Verdict
from blockpilot.blocks.base import Block, BlockEffect
from blockpilot.catalog import Catalog
from blockpilot.credentials.manager import IntegrationCredentialsManager
from blockpilot.credentials.matching import (
    CredentialsMatch,
    build_missing_credentials_from_field_info,
    discriminated_requirements,
    match_credentials_to_requirements,
)
from blockpilot.credentials.models import Credentials, CredentialsMetaInput
from blockpilot.errors import (
    BlockError,
    BlockInputError,
    BlockpilotError,
    CredentialsError,
    ReauthorizationRequiredError,
    WorkspaceError,
)
from blockpilot.executions.context import ExecutionContext
from blockpilot.executions.deadlines import deadline_in
from blockpilot.ids import SyntheticIds
from blockpilot.net.client import GuardedHTTPClient
from blockpilot.net.policy import TrustedDestinations
from blockpilot.outcomes import (
    Completed,
    DetailsShown,
    ExecutionFound,
    Failed,
    InputRejected,
    Replayed,
    ReviewRequired,
    RunOutcome,
    SetupRequired,
)
from blockpilot.redaction import Redactor
from blockpilot.storage.common import utcnow
from blockpilot.storage.executions import ExecutionRecord, ExecutionStore
from blockpilot.storage.idempotency import DONE, IdempotencyEntry
from blockpilot.storage.reviews import APPROVED, EXPIRED, PENDING, REJECTED, USED, Review
from blockpilot.workspaces.manager import WorkspaceManager

logger = logging.getLogger(__name__)

MAX_INPUT_DEPTH = 64
_NO_SECRETS = Redactor()  # a run given no credentials still has its output scrubbed of shapes
# The match of a block without credentials fields, shared: a match is only read once made,
# and a run in flight then holds no match (and list) of its own (docs/performance.md).
_NO_CREDENTIALS = CredentialsMatch()
_PREVIEW_CHARS = 2_000
_RECORD_STRING_CHARS = 2_000

# Adds a setup_url to each missing-credential entry where a service runs (issue: the service).
SetupUrlBuilder = Callable[[str, str, dict[str, Any]], str | None]


# The answer a caller was given for an outcome, as JSON: what an idempotent call keeps to
# answer a repeat with (the tools' wording, from blockpilot.tools.outcomes.answer_json).
AnswerJson = Callable[[RunOutcome, str | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RunLimits:
    block_timeout_seconds: float
    max_output_chars: int
    max_input_bytes: int


def _error(message: str, code: str, details: dict[str, Any] | None = None) -> Failed:
    return Failed(code=code, message=message, details=details)


def input_shape_problem(
    value: Any, *, max_bytes: int, max_depth: int = MAX_INPUT_DEPTH
) -> str | None:
    """Why *value* is too big or too deep to accept, or None. Iterative: deep input cannot
    exhaust the stack."""
    if type(value) is dict and max_depth > 1:
        flat = _flat_shape_problem(value, max_bytes)
        if flat is not _NOT_FLAT:
            return flat
    return _walk_shape_problem(value, max_bytes, max_depth)


def _walk_shape_problem(value: Any, max_bytes: int, max_depth: int) -> str | None:
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return f"input_data is nested deeper than {max_depth} levels; flatten it"
        if isinstance(node, dict):
            size += 2 + sum(len(str(k)) + 4 for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            size += 2 + len(node)
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            size += len(node.encode("utf-8", "surrogatepass")) + 2
        elif isinstance(node, float) and not math.isfinite(node):
            # Not JSON: the HTTP and CLI parsers refuse them, and PostgreSQL's json type
            # would refuse the execution record that keeps the input.
            return _NOT_FINITE
        else:
            size += 8
        if size > max_bytes:
            return _too_large(max_bytes)
    return None


_NOT_FINITE = "input_data holds NaN or Infinity, which JSON cannot carry; send a finite number"


def _too_large(max_bytes: int) -> str:
    return (
        f"input_data is larger than {max_bytes} bytes; "
        "send less data or write it to a workspace file first"
    )


_NOT_FLAT = "not flat"


def _flat_shape_problem(value: dict[Any, Any], max_bytes: int) -> str | None:
    """:func:`input_shape_problem` of a dict of plain strings and numbers (most inputs),
    without a stack: the same sizes, checked in the same order (the last value first).
    ``_NOT_FLAT`` when a value is anything else; the walk then starts over."""
    size = 2 + sum(len(str(k)) + 4 for k in value)
    if size > max_bytes:
        return _too_large(max_bytes)
    for node in reversed(value.values()):
        kind = type(node)
        if kind is str:
            size += len(node.encode("utf-8", "surrogatepass")) + 2
        elif kind is int or kind is bool or node is None:
            size += 8
        elif kind is float:
            if not math.isfinite(node):
                return _NOT_FINITE
            size += 8
        else:
            return _NOT_FLAT
        if size > max_bytes:
            return _too_large(max_bytes)
    return None


def _shows_schema(block: Block, input_data: dict[str, Any]) -> bool:
    """Step 9 (docs/architecture.md): a call with no inputs at all ({} or only credentials)
    always shows the schema, even for a block whose inputs are all optional; so does one
    without every required input."""
    provided = input_data.keys() - block.Input.credentials_fields()
    return not provided or not block.Input.required_input_fields() <= provided


def _record_input(
    raw_input: dict[str, Any], cred_kwargs: Mapping[str, Any], redactor: Redactor
) -> Any:
    """What the execution record keeps of the input: no credentials field, secrets and
    secret shapes scrubbed, long strings clipped. (A function of its own: as a comprehension
    in the run's coroutine it made a closure cell that every run in flight held.)"""
    kept = (
        {k: v for k, v in raw_input.items() if k not in cred_kwargs}
        if cred_kwargs
        else raw_input  # scrub makes a new dict
    )
    return _clip_strings(redactor.scrub(kept))


def _credentials_used(match: CredentialsMatch) -> list[dict[str, Any]]:
    """The credentials picked for the run, as the answer reports them."""
    return [c.public() for c in match.choices]


def _clip_strings(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _RECORD_STRING_CHARS:
        return (
            value[:_RECORD_STRING_CHARS]
            + f"… [{len(value) - _RECORD_STRING_CHARS} more characters]"
        )
    if isinstance(value, dict):
        return {k: _clip_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip_strings(v) for v in value]
    return value


class BlockRunner:
    """Runs one block for one user in one session: the checklist of docs/architecture.md."""

    def __init__(
        self,
        catalog: Catalog,
        credentials: IntegrationCredentialsManager,
        workspaces: WorkspaceManager,
        executions: ExecutionStore,
        *,
        http: GuardedHTTPClient,
        provider_urls: Mapping[str, str],
        limits: RunLimits,
        answer_json: AnswerJson,
        setup_url_builder: SetupUrlBuilder | None = None,
        gate: ApprovalGate | None = None,
        instance_id: str = "",
        idempotency_wait_seconds: float = 30.0,
    ) -> None:
        self.http = http
        self.provider_urls = provider_urls
        # Which operator-set base URLs each block may reach (blocks declare their scopes);
        # block sources add theirs with ``trusted.add(scope, base_url)``.
        self.trusted = TrustedDestinations(provider_urls)
        self.catalog = catalog
        self.credentials = credentials
        self.workspaces = workspaces
        self.executions = executions
        self.limits = limits
        self.answer_json = answer_json
        self.setup_url_builder = setup_url_builder
        self.gate = gate
        self.instance_id = instance_id
        self.idempotency_wait_seconds = idempotency_wait_seconds

    def time_limit(self, block_id: Any) -> float:
        """Seconds a run of *block_id* may take: the block's own timeout, else
        ``BLOCKPILOT_BLOCK_TIMEOUT_SECONDS`` (also for an id that names no block)."""
        block = self.catalog.registry.get(block_id) if isinstance(block_id, str) else None
        return self._block_time_limit(block)

    def _block_time_limit(self, block: Block | None) -> float:
        """:meth:`time_limit` of a block already looked up."""
        own = block.timeout_seconds if block is not None else None
        return own or self.limits.block_timeout_seconds

    async def run(
        self,
        *,
        user_id: str,
        session_id: str,
        block_id: Any,
        input_data: Any,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        api_key_id: str | None = None,
    ) -> RunOutcome:
        """Run *block_id* with *input_data* for the signed-in *user_id* in *session_id*,
        making the checks of docs/architecture.md#the-run_block-checklist in order."""
        # 1-2: the arguments themselves.
        if not isinstance(block_id, str) or not block_id.strip():
            return _error("Please provide a block_id", "missing_block_id")
        block_id = block_id.strip()
        if not isinstance(input_data, dict) or not all(isinstance(k, str) for k in input_data):
            return _error("input_data must be an object", "invalid_input_data")
        problem = input_shape_problem(input_data, max_bytes=self.limits.max_input_bytes)
        if problem is not None:
            return _error(problem, "invalid_input_data")
        # 3: who. The caller is signed in: Pilot.run_call checks that once, before any tool runs
        # (docs/architecture.md#where-sign-in-is-checked).
        # 4-6: which block, and may it run here.
        block = self.catalog.registry.get(block_id)
        if block is None:
            gone = self.catalog.registry.retired(block_id)
            why = f": it was {gone}; use find_block for what is offered now" if gone else ""
            return _error(f"Block '{block_id[:100]}' not found{why}", "block_not_found")
        if self.catalog.registry.is_disabled(block):
            return _error(f"Block '{block_id}' is disabled", "block_disabled")
        if self.catalog.exclusions.excludes(block):
            return _error(
                f"Block '{block.name}' cannot be run directly in CoPilot. "
                "This block is designed for use within graphs only.",
                "block_excluded",
            )
        # 7: never silently drop a misspelled field.
        if not input_data.keys() <= block.Input.field_names():
            unknown = sorted(set(input_data) - block.Input.field_names())
            return InputRejected(
                message=(
                    f"Unknown input field(s) provided: {', '.join(unknown)}. "
                    "Block was not executed. Please use the correct field names from the schema."
                ),
                code="unknown_fields",
                unrecognized_fields=unknown,
                inputs=block.Input.jsonschema(),
            )
        # 8: credentials.
        preview = _shows_schema(block, input_data)
        match = (
            await self._match(block, user_id, input_data, for_execution=not preview)
            if block.Input.credentials_fields()
            else _NO_CREDENTIALS  # nothing to match: no coroutine for it
        )
        if match.missing:
            return self._setup_requirements(block, user_id, match)
        # 9: a call with {} (or without required inputs) shows the schema.
        if preview:
            return DetailsShown(block, [_meta_input(m) for m in match.matched.values()])
        # 10: values.
        full_input = dict(input_data)
        for name, meta in match.matched.items():
            # Only the metadata goes into input_data, and only where the caller gave none (a bare
            # id, or a value that does not describe the matched credential, is replaced); the
            # secret travels as a keyword argument.
            given = full_input.get(name)
            if not (
                isinstance(given, Mapping)
                and (given.get("id"), given.get("provider"), given.get("type"))
                == (meta.id, meta.provider, meta.type)
            ):
                full_input[name] = _meta_input(meta).model_dump()
        try:
            typed_input = block.validate_input(full_input)
        except BlockInputError as exc:
            return InputRejected(
                message=f"{exc.message}. Block was not executed.",
                code="invalid_input",
                inputs=block.Input.jsonschema(),
                errors=exc.details.get("errors", {}),
            )
        # 11: the policy and approval gate (docs/approvals.md), then execute.
        if self.gate is None:
            return await self._execute(
                block, user_id, session_id, typed_input, input_data, match, dry_run
            )
        verdict = await self.gate.verdict(block, user_id, session_id, api_key_id)
        if verdict.decision is Decision.ALLOW and idempotency_key is None:
            # Nothing to deny, ask or fence (the usual call): the run, without _gated's frame
            # held around it while the block runs (docs/performance.md).
            return await self._execute(
                block,
                user_id,
                session_id,
                typed_input,
                input_data,
                match,
                dry_run or verdict.force_dry_run,
            )
        return await self._gated(
            block,
            user_id,
            session_id,
            typed_input,
            input_data,
            match,
            dry_run,
            idempotency_key,
            verdict,
        )

    async def _gated(
        self,
        block: Block,
        user_id: str,
        session_id: str,
        typed_input: Any,
        raw_input: dict[str, Any],
        match: CredentialsMatch,
        dry_run: bool,
        idempotency_key: str | None,
        verdict: Verdict,
    ) -> RunOutcome:
        """Policy (*verdict*), idempotency and review, in that order, around :meth:`_execute`."""
        gate = self.gate
        assert gate is not None
        if verdict.decision is Decision.DENY:
            return _error(
                f"Running '{block.name}' is not allowed by policy ({verdict.rule}). "
                "Tell the user; do not try to do the same another way.",
                "policy_denied",
                {"rule": verdict.rule, "effect": block.effect.value},
            )
        dry_run = dry_run or verdict.force_dry_run
        ids = SyntheticIds.for_run(session_id, block.id)
        if idempotency_key is not None or verdict.decision is Decision.ASK:
            cred_fields = block.Input.credentials_fields()
            inputs = {k: v for k, v in raw_input.items() if k not in cred_fields}
            credential_ids = [m.id for m in match.matched.values()]
        if idempotency_key is not None:
            key_digest = call_digest(user_id, block.id, {"dry_run": dry_run, **inputs}, [])
            while True:
                replay = await self._claim_key(user_id, idempotency_key, key_digest)
                if replay is not None:
                    return replay
                # The fence: only the process that records the execution id may run.
                if await gate.idempotency.begin_run(
                    user_id, idempotency_key, self.instance_id, ids.node_exec_id
                ):
                    break
                # Another process took the claim over, thinking this one gone: wait for it.
        started = False
        try:
            if verdict.decision is Decision.ASK and not dry_run:
                refusal = await self._approval(
                    gate,
                    block,
                    user_id,
                    session_id,
                    inputs,
                    credential_ids,
                    verdict.rule,
                    match,
                    ids.node_exec_id,
                )
                if refusal is not None:
                    return refusal
            started = True
            response = await self._execute(
                block,
                user_id,
                session_id,
                typed_input,
                raw_input,
                match,
                dry_run,
                ids=ids,
                durable_start=idempotency_key is not None,
            )
        finally:
            if idempotency_key is not None and not started:
                # Nothing ran (a review is needed, or the approval was used up): the key is
                # free for the call that will run.
                await gate.idempotency.release(user_id, idempotency_key, self.instance_id)
        if idempotency_key is not None:
            await self.executions.flush()
            await gate.idempotency.finish(
                user_id, idempotency_key, ids.node_exec_id, self.answer_json(response, session_id)
            )
        return response

    async def _approval(
        self,
        gate: ApprovalGate,
        block: Block,
        user_id: str,
        session_id: str,
        inputs: dict[str, Any],
        credential_ids: list[str],
        rule: str,
        match: CredentialsMatch,
        execution_id: str,
    ) -> RunOutcome | None:
        """None when a person approved exactly this call (the approval is now used);
        otherwise the answer to give instead of running."""
        digest = call_digest(user_id, block.id, inputs, credential_ids)
        latest = await gate.reviews.latest_for_digest(user_id, digest)
        status = latest.current_status() if latest is not None else None
        if latest is not None and status == REJECTED:
            return _rejected(latest)
        if (
            latest is not None
            and status == APPROVED
            and await gate.reviews.consume(user_id, latest.id, execution_id)
        ):
            return None
        # The open review of this exact call is reused; otherwise a new one is made.
        review = latest if latest is not None and status == PENDING else None
        review = review or await gate.new_review(
            block=block,
            user_id=user_id,
            session_id=session_id,
            digest=digest,
            inputs=inputs,
            credential_ids=credential_ids,
            rule=rule,
        )
        return ReviewRequired(
            block,
            review,
            credentials=[c.public() for c in match.choices],
            rule=rule,
            approval_url=gate.approval_url(review),
        )

    async def _claim_key(self, user_id: str, key: str, digest: str) -> RunOutcome | None:
        """None once this call owns *key*; otherwise the answer from the call that owned it."""
        gate = self.gate
        assert gate is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.idempotency_wait_seconds
        while True:
            entry = await gate.idempotency.claim(user_id, key, digest, self.instance_id)
            if entry is None:
                return None
            if entry.digest != digest:
                return _error(
                    "This idempotency_key was used for a call with other inputs; use a new key "
                    "for a new call.",
                    "idempotency_conflict",
                    {"execution_id": entry.execution_id},
                )
            if entry.status == DONE and entry.response is not None:
                return Replayed(entry.response)
            if not entry.claimer_alive and entry.execution_status != "running":
                # (A running record is left to the lease sweep, which knows better.)
                if entry.execution_id is None:
                    # Its process is gone and had not started the block: nothing happened.
                    if await gate.idempotency.take_over(
                        user_id, key, entry.instance_id or "", self.instance_id
                    ):
                        return None
                    continue
                return _unknown_outcome(entry)
            if loop.time() >= give_up:
                return _error(
                    "A call with this idempotency_key is still running; ask again later or "
                    "check it with get_execution.",
                    "idempotency_in_progress",
                    {"execution_id": entry.execution_id},
                )
            await asyncio.sleep(0.05)

    async def continue_review(
        self,
        *,
        user_id: str,
        session_id: str,
        review_id: Any,
        api_key_id: str | None = None,
    ) -> RunOutcome:
        """Run the call a person approved (continue_run_block)."""
        if not isinstance(review_id, str) or not review_id.strip() or len(review_id) > 64:
            return _error("Please provide the review_id", "missing_review_id")
        review = await self.gate.reviews.get(user_id, review_id.strip()) if self.gate else None
        if review is None:
            return _error(f"Review {review_id[:64]!r} not found", "review_not_found")
        status = review.current_status()
        if status == REJECTED:
            return _rejected(review)
        if status == EXPIRED:
            return _error(
                "This review expired before it was approved; call run_block again to ask anew.",
                "review_expired",
            )
        if status == USED:
            return _error(
                "This approval was already used: an approval runs a call once.",
                "review_used",
                {"execution_id": review.execution_id},
            )
        if status == PENDING:
            return _error(
                "The user has not decided yet; wait for them, then call continue_run_block again.",
                "review_pending",
                {"approval_url": self.gate.approval_url(review) if self.gate else None},
            )
        assert status == APPROVED
        return await self.run(
            user_id=user_id,
            session_id=session_id,
            block_id=review.block_id,
            input_data=dict(review.input_data),
            api_key_id=api_key_id,
        )

    async def execution_status(self, *, user_id: str, execution_id: Any) -> RunOutcome:
        """Did one of the caller's runs happen, and what came out (get_execution)."""
        if not isinstance(execution_id, str) or not execution_id.strip():
            return _error("Please provide the execution_id", "missing_execution_id")
        await self.executions.flush()
        record = await self.executions.get(user_id, execution_id.strip()[:120])
        if record is None:
            return _error(f"Execution {execution_id[:120]!r} not found", "execution_not_found")
        outputs = None
        if self.gate is not None:
            kept = await self.gate.idempotency.response_for(user_id, record.id)
            if kept is not None and isinstance(kept.get("outputs"), dict):
                outputs = kept["outputs"]
        return ExecutionFound(record, outputs)

    async def _match(
        self, block: Block, user_id: str, input_data: Mapping[str, Any], *, for_execution: bool
    ) -> CredentialsMatch:
        """The user's credentials for *block*'s credentials fields (it has some)."""
        fields = block.Input.credentials_fields()
        defaults = {
            name: f.default for name, f in block.Input.model_fields.items() if not f.is_required()
        }
        requirements = discriminated_requirements(fields, input_data, defaults)
        candidates = await self.credentials.candidates(user_id)
        return match_credentials_to_requirements(
            candidates, requirements, input_data, for_execution=for_execution
        )

    def _setup_requirements(
        self, block: Block, user_id: str, match: CredentialsMatch, *, reason: str | None = None
    ) -> SetupRequired:
        missing = {name: dict(entry) for name, entry in match.missing.items()}
        if self.setup_url_builder is not None:
            for entry in missing.values():
                url = self.setup_url_builder(user_id, block.id, entry)
                if url:
                    entry["setup_url"] = url
        return SetupRequired(block, missing, reason)

    async def _execute(
        self,
        block: Block,
        user_id: str,
        session_id: str,
        typed_input: Any,
        raw_input: dict[str, Any],
        match: CredentialsMatch,
        dry_run: bool,
        *,
        ids: SyntheticIds | None = None,
        durable_start: bool = False,
    ) -> RunOutcome:
        workspace = await self.workspaces.get_or_create_workspace(user_id)
        ids = ids or SyntheticIds.for_run(session_id, block.id)
        context = ExecutionContext.of(
            {
                "user_id": user_id,
                "graph_id": ids.graph_id,
                "graph_exec_id": ids.graph_exec_id,
                "graph_version": ids.graph_version,
                "node_id": ids.node_id,
                "node_exec_id": ids.node_exec_id,
                "workspace_id": workspace.id,
                "session_id": session_id,
                "dry_run": dry_run,
            }
        ).attach(
            files=self.workspaces.for_workspace(workspace),
            # The operator's base URLs are exempt for this block's own scopes only.
            http=self.http.with_exemptions(self.trusted.for_scopes(block.network_scopes())),
            provider_urls=self.provider_urls,
            # An upstream's 401 mid-run: refresh once, for this user only (docs/sources.md).
            refresh=partial(self.credentials.refresh_rejected, user_id),
        )

        cred_kwargs: dict[str, Credentials] = {}
        redactor = _NO_SECRETS
        if match.matched:
            fetched = await self._fetch_credentials(user_id, match)
            if isinstance(fetched, Failed):
                return fetched
            cred_kwargs, redactor = fetched

        record = ExecutionRecord(
            id=ids.node_exec_id,
            user_id=user_id,
            session_id=session_id,
            block_id=block.id,
            block_name=block.name,
            status="running",
            started_at=utcnow(),
            input_redacted=_record_input(raw_input, cred_kwargs, redactor),
            credential_ids=[m.id for m in match.matched.values()],
            is_dry_run=dry_run,
        )
        try:
            # A run that changes nothing outside may share its record's commit with its final
            # state (docs/performance.md); any other block runs only once its row is durable,
            # and so does a call with an idempotency key, whose claim names this execution id.
            effect_free = not durable_start and (dry_run or block.effect is BlockEffect.READ)
            await self.executions.start(record, effect_free=effect_free)
        except asyncio.CancelledError:
            # The running row may be committed anyway (a group commit in flight): close it.
            self._cancelled(record, time.perf_counter())
            raise
        started = time.perf_counter()
        if dry_run:
            self._finish(record, started, "completed", summary={"dry_run": True})
            return Completed(
                block, record.id, {}, credentials_used=_credentials_used(match), dry_run=True
            )

        kwargs: dict[str, Any] = {
            "user_id": user_id,
            "execution_context": context,
            "workspace_id": workspace.id,
            "graph_exec_id": ids.graph_exec_id,
            "node_exec_id": ids.node_exec_id,
            "node_id": ids.node_id,
            "graph_version": ids.graph_version,
            "graph_id": ids.graph_id,
            **cred_kwargs,
        }
        timeout = self._block_time_limit(block)
        outputs: dict[str, list[Any]] = {}
        deadline = deadline_in(timeout)
        try:
            with deadline:
                if type(block).execute is Block.execute:
                    await block.collect_into(typed_input, outputs, kwargs)
                else:  # a block with an execute of its own
                    async for name, value in block.execute(typed_input, **kwargs):
                        outputs.setdefault(name, []).append(value)
        except TimeoutError as exc:
            if not deadline.expired():  # raised by the block itself (a socket timeout, say)
                return self._crashed(exc, block, record, started, redactor)
            message = f"Block '{block.name}' timed out after {timeout:g}s"
            self._finish(record, started, "timed_out", code="block_timeout", message=message)
            return _error(message, "block_timeout")
        except asyncio.CancelledError:
            self._cancelled(record, started)
            raise
        except BlockError as exc:
            reason = redactor.scrub_text(exc.message)
            logger.warning(
                "block failed",
                extra={"block": block.name, "execution_id": record.id, "reason": reason},
            )
            self._finish(record, started, "failed", code=exc.code, message=reason)
            code = exc.code if exc.code in ("block_timeout", "invalid_output") else "block_failed"
            return _error(f"Block execution failed: {reason}", code)
        except ReauthorizationRequiredError as exc:
            # The upstream refused the credential mid-run (an MCP server's 401): the user must
            # reconnect, so answer with setup requirements (docs/sources.md).
            reason = redactor.scrub_text(exc.message)
            self._finish(record, started, "failed", code=exc.code, message=reason)
            for meta in match.matched.values():
                if not meta.is_system:
                    await self.credentials.store.mark_needs_reauthorization(user_id, meta.id)
            missing = build_missing_credentials_from_field_info(block.Input.credentials_fields())
            return self._setup_requirements(
                block, user_id, CredentialsMatch(missing=missing), reason=reason
            )
        except BlockpilotError as exc:
            reason = redactor.scrub_text(exc.message)
            logger.warning(
                "block failed",
                extra={"block": block.name, "execution_id": record.id, "reason": reason},
            )
            self._finish(record, started, "failed", code=exc.code, message=reason)
            return _error(f"Block execution failed: {reason}", "block_failed", {"cause": exc.code})
        except Exception as exc:
            return self._crashed(exc, block, record, started, redactor)

        try:
            safe = redactor.scrub(to_jsonable_python(outputs, fallback=str))
            counts = {name: len(values) for name, values in safe.items()}  # before any truncation
            truncated = False
            if _json_len_at_most(safe) > self.limits.max_output_chars:  # rarely: no coroutine
                safe, truncated = await self._cap_outputs(safe, context, record.id)
        except asyncio.CancelledError:
            self._cancelled(record, started)
            raise
        except Exception as exc:  # e.g. saving a cut value failed unexpectedly: the run still ends
            return self._crashed(exc, block, record, started, redactor)
        summary = {"pins": counts, "truncated": truncated}
        self._finish(record, started, "completed", summary=summary)
        used = [m.id for m in match.matched.values() if not m.is_system]
        if used:
            await self.credentials.store.mark_used(user_id, used)
        return Completed(
            block, record.id, safe, credentials_used=_credentials_used(match), truncated=truncated
        )

    async def _fetch_credentials(
        self, user_id: str, match: CredentialsMatch
    ) -> tuple[dict[str, Credentials], Redactor] | Failed:
        """The matched credentials by field name, and a redactor of their secrets."""
        secrets: list[str] = []
        cred_kwargs: dict[str, Credentials] = {}
        for name, meta in match.matched.items():
            try:
                creds = await self.credentials.get(user_id, meta.id)
            except CredentialsError as exc:
                return _error(
                    f"Failed to retrieve credentials for {name}: {exc.message}",
                    "credentials_unavailable",
                )
            if creds is None:
                return _error(
                    f"Failed to retrieve credentials for {name}",
                    "credentials_unavailable",
                )
            cred_kwargs[name] = creds
            secrets += creds.secret_values()
        return cred_kwargs, Redactor(secrets) if secrets else _NO_SECRETS

    def _crashed(
        self,
        exc: Exception,
        block: Block,
        record: ExecutionRecord,
        started: float,
        redactor: Redactor,
    ) -> Failed:
        """An unexpected exception from a block: logged with its traceback, answered scrubbed."""
        reason = redactor.scrub_text(f"{type(exc).__name__}: {exc}")
        logger.exception("block crashed", extra={"block": block.name, "execution_id": record.id})
        self._finish(record, started, "failed", code="internal_error", message=reason)
        return _error(f"Failed to execute block: {reason}", "internal_error")

    def _cancelled(self, record: ExecutionRecord, started: float) -> None:
        self._finish(record, started, "cancelled", code="cancelled", message="Cancelled")

    def _finish(
        self,
        record: ExecutionRecord,
        started: float,
        status: str,
        *,
        code: str | None = None,
        message: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        record.status = status
        record.finished_at = utcnow()
        record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        record.error_code = code
        record.error_message = message
        record.output_summary = summary
        self.executions.finish(record)

    async def _cap_outputs(
        self, outputs: dict[str, list[Any]], context: ExecutionContext, execution_id: str
    ) -> tuple[dict[str, list[Any]], bool]:
        """Make the outputs fit ``max_output_chars`` (as JSON), saving what is cut in full.

        First the largest values are replaced by a preview plus a marker naming the
        workspace file that holds the whole value; if many small values still do not fit,
        the tail of each large pin is replaced by one marker naming a file with the whole
        list. A replacement is only made when it is smaller than what it replaces.

        Awaited only when :func:`_json_len_at_most` says the outputs may not fit (the run
        tells the usual case without this coroutine).
        """
        limit = self.limits.max_output_chars
        total = _json_len(outputs)
        if total <= limit:
            return outputs, False
        folder = f"/.blockpilot/outputs/{execution_id}"
        capped = {name: list(values) for name, values in outputs.items()}
        sizes = {
            (name, i): _json_len(v)
            for name, values in outputs.items()
            for i, v in enumerate(values)
        }
        for (name, i), size in sorted(sizes.items(), key=lambda item: -item[1]):
            if total <= limit:
                break
            value = outputs[name][i]
            text = (
                value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
            )
            path = f"{folder}/{name}-{i}.{'txt' if isinstance(value, str) else 'json'}"
            note = _value_note(len(text), _saved_at(_PLACEHOLDER_URI, path))
            room = limit - (total - size) - _json_len(note)
            preview = _fit_prefix(text, min(_PREVIEW_CHARS, room))
            if _json_len(preview + note) >= size:
                continue  # a marker would not be smaller than the value itself
            capped[name][i] = preview + _value_note(
                len(text), await _save_full(context, path, text)
            )
            total = _json_len(capped)
        for name in sorted(capped, key=lambda n: -_json_len(capped[n])):
            if total <= limit:
                break
            values = outputs[name]
            path = f"{folder}/{name}-all.json"
            others = total - _json_len(capped[name])
            note = _list_note(len(values), len(values), _saved_at(_PLACEHOLDER_URI, path))
            keep: list[Any] = []
            for value in capped[name]:
                if others + _json_len([*keep, value, note]) > limit:
                    break
                keep.append(value)
            where = await _save_full(
                context, path, json.dumps(values, ensure_ascii=False, indent=1)
            )
            capped[name] = [*keep, _list_note(len(values), len(keep), where)]
            total = _json_len(capped)
        return capped, True


_PLACEHOLDER_URI = "workspace://" + "0" * 36


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False))


def _json_len_at_most(value: Any) -> int:
    """An upper bound of :func:`_json_len` for JSON-ready *value*, ~3x cheaper to get.

    pydantic's compact encoding has every character of ``json.dumps`` (the same escapes)
    except the space after each ``,`` and ``:``, and spends at least one byte per character;
    so the ``json.dumps`` text has at most twice its bytes.
    """
    try:
        return 2 * len(to_json(value))
    except ValueError:  # text that is not Unicode (a lone surrogate): no UTF-8 form
        return _json_len(value)


def _fit_prefix(text: str, budget: int) -> str:
    """The longest prefix of *text* (up to *budget* characters) whose JSON form fits *budget*."""
    prefix = text[: max(budget, 0)]
    while prefix and _json_len(prefix) - 2 > budget:
        prefix = prefix[: len(prefix) - max(1, (_json_len(prefix) - 2 - budget) // 2)]
    return prefix


async def _save_full(context: ExecutionContext, path: str, text: str) -> str:
    """Save a cut value in the workspace; says where, or why it could not be kept."""
    try:
        saved = await context.files.write(path, text)
    except WorkspaceError:
        return "it was too large to keep in the workspace"
    return _saved_at(saved.uri, saved.path)


def _saved_at(uri: str, path: str) -> str:
    return f"saved as {uri} (workspace path {path})"


def _value_note(length: int, where: str) -> str:
    return f"… [truncated: {length} characters in total; the full value is {where}]"


def _list_note(count: int, shown: int, where: str) -> str:
    return f"[truncated: {count} values in total, {shown} shown; the full list is {where}]"


def _rejected(review: Review) -> Failed:
    reason = f": {review.reason}" if review.reason else ""
    return _error(
        f"The user rejected running '{review.block_name}' with these inputs{reason}",
        "review_rejected",
        {"review_id": review.id, "reason": review.reason},
    )


def _unknown_outcome(entry: IdempotencyEntry) -> Failed:
    status = entry.execution_status
    if status is None:
        message = (
            "The first call with this idempotency_key was interrupted before the block started "
            "(the server stopped): nothing was done. Use a new key to try again."
        )
        status = "not_started"
    elif status == "interrupted":
        message = (
            "The first call with this idempotency_key was interrupted while the block was "
            "running (the server stopped): whether it took effect is unknown. Check before "
            "trying again with a new key."
        )
    else:
        message = (
            f"The first call with this idempotency_key ended as {status}, but its answer was "
            "not kept; see get_execution."
        )
    return _error(
        message,
        "idempotency_outcome_unknown",
        {"execution_id": entry.execution_id, "status": status},
    )


def _meta_input(meta: Any) -> CredentialsMetaInput:
    return CredentialsMetaInput(
        id=meta.id, provider=meta.provider, type=meta.type, title=meta.title
    )
