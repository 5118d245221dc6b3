"""The one place where a run's outcome becomes the tool response every door sends.

The runner says what happened (:mod:`blockpilot.outcomes`); this module words it for the
model and shapes it as the documented response types (docs/tools.md).
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from blockpilot.blocks.schema import get_inputs_from_schema
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
from blockpilot.tools.responses import (
    BlockDetails,
    BlockDetailsResponse,
    BlockOutputResponse,
    ErrorResponse,
    ExecutionStatusResponse,
    InputValidationErrorResponse,
    ReviewRequiredResponse,
    SetupInfo,
    SetupRequirementsResponse,
    ToolResponseBase,
    UserReadiness,
    any_tool_response,
)


def tool_response(outcome: RunOutcome, session_id: str | None) -> ToolResponseBase:
    """*outcome* as the response the model reads, in chat session *session_id*."""
    match outcome:
        case Failed(code=code, message=message, details=details):
            return ErrorResponse(
                message=message, error=code, code=code, details=details, session_id=session_id
            )
        case InputRejected():
            return InputValidationErrorResponse(
                message=outcome.message,
                code=outcome.code,
                unrecognized_fields=outcome.unrecognized_fields,
                inputs=outcome.inputs,
                errors=outcome.errors,
                session_id=session_id,
            )
        case SetupRequired():
            return _setup_requirements(outcome, session_id)
        case DetailsShown(block=block):
            return BlockDetailsResponse(
                message=(
                    f"Block '{block.name}' details. "
                    "Provide input_data matching the inputs schema to execute the block."
                ),
                block=BlockDetails(
                    id=block.id,
                    name=block.name,
                    description=block.description,
                    inputs=block.Input.jsonschema(),
                    outputs=block.Output.jsonschema(),
                    effect=block.effect.value,
                    credentials=outcome.credentials,
                ),
                session_id=session_id,
            )
        case Completed(block=block):
            message = (
                f"Dry run of block '{block.name}': "
                "inputs and credentials are valid; nothing was executed."
                if outcome.dry_run
                else f"Block '{block.name}' executed successfully"
            )
            return _validated(
                BlockOutputResponse,
                {
                    "message": message,
                    "block_id": block.id,
                    "block_name": block.name,
                    "outputs": outcome.outputs,
                    "execution_id": outcome.execution_id,
                    "is_dry_run": outcome.dry_run,
                    "output_truncated": outcome.truncated,
                    "credentials_used": outcome.credentials_used,
                    "session_id": session_id,
                },
            )
        case ReviewRequired(block=block, review=review):
            return ReviewRequiredResponse(
                message=(
                    f"Running '{block.name}' ({block.effect.value}) needs the user's approval; "
                    "nothing was run. Show the user the approval link (or ask them to approve "
                    f"review {review.id}); once they approve, call run_block again with exactly "
                    "the same inputs, or continue_run_block with the review_id."
                ),
                review_id=review.id,
                block_id=block.id,
                block_name=block.name,
                effect=block.effect.value,
                input_data=review.input_data,
                credentials=outcome.credentials,
                rule=outcome.rule,
                approval_url=outcome.approval_url,
                expires_at=review.expires_at.isoformat(),
                session_id=session_id,
            )
        case Replayed(answer=answer):
            # The first call's answer as it was (its session included), marked as a replay
            # where it was a run.
            response = any_tool_response(answer)
            if isinstance(response, BlockOutputResponse):
                response.replayed = True
            return response
        case ExecutionFound(record=record):
            return ExecutionStatusResponse(
                message=f"Execution {record.id} of '{record.block_name}' is {record.status}",
                execution=record.public(),
                outputs=outcome.outputs,
                session_id=session_id,
            )
    raise AssertionError(f"unknown outcome {outcome!r}")  # pragma: no cover


_Response = TypeVar("_Response", bound=ToolResponseBase)


def _validated(cls: type[_Response], fields: dict[str, Any]) -> _Response:
    """``cls(**fields)``: the same validation by the model's own validator, without
    ``BaseModel.__init__`` around it (~0.4 µs of every run_block answer; docs/performance.md)."""
    return cast(_Response, cls.__pydantic_validator__.validate_python(fields))


def answer_json(outcome: RunOutcome, session_id: str | None) -> dict[str, Any]:
    """:func:`tool_response` as JSON: what an idempotent call keeps to answer a repeat with."""
    return tool_response(outcome, session_id).model_dump(mode="json")


def _setup_requirements(outcome: SetupRequired, session_id: str | None) -> ToolResponseBase:
    block = outcome.block
    missing = outcome.missing
    inputs = get_inputs_from_schema(block.Input.jsonschema(), set(block.Input.credentials_fields()))
    message = (
        f"Block '{block.name}' requires credentials that are not configured. "
        "Please set up the required credentials before running this block. "
        "The user has been shown how to connect the account; "
        "wait for them to finish, then call run_block again."
    )
    if outcome.reason:
        message = f"{outcome.reason}. {message}"
    return SetupRequirementsResponse(
        message=message,
        setup_info=SetupInfo(
            agent_id=block.id,
            agent_name=block.name,
            user_readiness=UserReadiness(
                has_all_credentials=False, missing_credentials=missing, ready_to_run=False
            ),
            requirements={
                "credentials": list(missing.values()),
                "inputs": inputs,
                "execution_modes": ["immediate"],
            },
        ),
        session_id=session_id,
    )


__all__ = ["answer_json", "tool_response"]
