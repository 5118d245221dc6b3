"""What a run of the run_block use case came to: one typed outcome per kind of ending.

:class:`~blockpilot.runner.BlockRunner` returns these; one place,
:func:`blockpilot.tools.outcomes.tool_response`, turns them into the tool responses every
door sends (docs/architecture.md). An outcome holds facts (the block, the record, the
review); how they are worded for the model is the tools' business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blockpilot.blocks.base import Block
from blockpilot.credentials.models import CredentialsMetaInput
from blockpilot.storage.executions import ExecutionRecord
from blockpilot.storage.reviews import Review


@dataclass(frozen=True, slots=True)
class Failed:
    """Nothing ran (a check failed), or the run did not succeed: a stable *code* and a
    message saying what to do."""

    code: str
    message: str
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class InputRejected:
    """``input_data`` does not fit the block's input schema (*inputs*); nothing ran."""

    code: str  # unknown_fields | invalid_input
    message: str
    inputs: dict[str, Any]
    unrecognized_fields: list[str] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetupRequired:
    """The user must connect an account first: *missing* by credentials field (each entry
    with a ``setup_url`` where the service runs). *reason* says why when a credential that
    existed was refused."""

    block: Block
    missing: dict[str, dict[str, Any]]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DetailsShown:
    """A call without the block's required inputs: its schemas and the credentials that
    would be used."""

    block: Block
    credentials: list[CredentialsMetaInput]


@dataclass(frozen=True, slots=True)
class Completed:
    """The block ran (or, with *dry_run*, everything was checked and nothing ran)."""

    block: Block
    execution_id: str
    outputs: dict[str, list[Any]]
    credentials_used: list[dict[str, Any]]
    dry_run: bool = False
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ReviewRequired:
    """A person must approve exactly this call first (*review*); nothing ran."""

    block: Block
    review: Review
    credentials: list[dict[str, Any]]
    rule: str
    approval_url: str | None


@dataclass(frozen=True, slots=True)
class Replayed:
    """A repeated idempotency key: the first call's *answer*, as it was given then."""

    answer: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExecutionFound:
    """One of the caller's runs, and its outputs where they were kept."""

    record: ExecutionRecord
    outputs: dict[str, list[Any]] | None


RunOutcome = (
    Failed
    | InputRejected
    | SetupRequired
    | DetailsShown
    | Completed
    | ReviewRequired
    | Replayed
    | ExecutionFound
)

__all__ = [
    "Completed",
    "DetailsShown",
    "ExecutionFound",
    "Failed",
    "InputRejected",
    "Replayed",
    "ReviewRequired",
    "RunOutcome",
    "SetupRequired",
]
