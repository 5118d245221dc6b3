"""The signed-in user's policy rules: narrow the operator's policy (docs/approvals.md).

A user may only make the policy stricter (the strictest applicable rule wins), so managing
one's own rules needs no admin key.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.approvals.policy import policy_document, rule_from_options
from blockpilot.errors import NotFoundError

router = APIRouter(tags=["policy"])


class PolicyRuleIn(BaseModel):
    """One rule; name exactly one of effect, block, source or provider."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["allow", "ask", "deny"]
    effect: Literal["read", "write", "destructive"] | None = None
    block: str | None = Field(default=None, max_length=200, description="A block's name or id.")
    source: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(
        default=None, max_length=128, description="Only in this chat session of yours."
    )


class PolicyDocument(BaseModel):
    operator: list[dict[str, Any]]
    user: list[dict[str, Any]]
    note: str


@router.get("/policy", summary="The operator's rules and yours")
async def get_policy(user: CurrentUser, pilot: PilotDep) -> PolicyDocument:
    document = policy_document(pilot.gate.operator_rules, await pilot.policies.for_user(user.id))
    return PolicyDocument.model_validate(document)


@router.post(
    "/policy/rules",
    summary="Add (or replace) one of your rules",
    status_code=201,
    responses=error_responses(400, 404, 413, 415, 422),
)
async def add_rule(body: PolicyRuleIn, user: CurrentUser, pilot: PilotDep) -> dict[str, Any]:
    if body.session_id is not None and await pilot.sessions.get(user.id, body.session_id) is None:
        raise NotFoundError(f"Session {body.session_id[:80]!r} not found")
    rule = rule_from_options(
        effect=body.effect,
        block=body.block,
        source=body.source,
        provider=body.provider,
        decision=body.decision,
        user_id=user.id,
        session_id=body.session_id,
    )
    return (await pilot.policies.add(rule)).public()


@router.delete(
    "/policy/rules/{rule_id}",
    summary="Remove one of your rules",
    status_code=204,
    responses=error_responses(404),
)
async def remove_rule(rule_id: str, user: CurrentUser, pilot: PilotDep) -> Response:
    if not await pilot.policies.remove(user.id, rule_id[:64]):
        raise NotFoundError(f"Rule {rule_id[:64]!r} not found")
    return Response(status_code=204)
