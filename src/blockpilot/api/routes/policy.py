"""The signed-in user's policy rules: narrow the operator's policy (docs/approvals.md).

A user may only make the policy stricter (the strictest applicable rule wins), so managing
one's own rules needs no admin key. A rule may be limited to one of the user's API keys (say,
the key handed to an agent); a request made with that key cannot remove or replace it.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from blockpilot.api.deps import CurrentUser, PilotDep, request_api_key_id
from blockpilot.api.routes import error_responses
from blockpilot.approvals.policy import PolicyRule, policy_document, rule_from_options
from blockpilot.errors import NotFoundError, PolicyLockedError

CURRENT_KEY = "current"

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
    api_key_id: str | None = Field(
        default=None,
        max_length=64,
        description="Only for calls made with this API key of yours: its id or shown prefix "
        f"(`bp_…`), or {CURRENT_KEY!r} for the key of this request.",
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
    responses=error_responses(400, 403, 404, 413, 415, 422),
)
async def add_rule(
    body: PolicyRuleIn, request: Request, user: CurrentUser, pilot: PilotDep
) -> dict[str, Any]:
    if body.session_id is not None and await pilot.sessions.get(user.id, body.session_id) is None:
        raise NotFoundError(f"Session {body.session_id[:80]!r} not found")
    own_key = request_api_key_id(request)
    api_key_id = body.api_key_id
    if api_key_id == CURRENT_KEY:
        api_key_id = own_key
    elif api_key_id is not None:
        api_key_id = await pilot.users.api_key_id(user.id, api_key_id)
    rule = rule_from_options(
        effect=body.effect,
        block=body.block,
        source=body.source,
        provider=body.provider,
        decision=body.decision,
        user_id=user.id,
        session_id=body.session_id,
        api_key_id=api_key_id,
    )
    # Adding replaces a rule with the same target: a key may not replace its own rule.
    _unlocked(own_key, await pilot.policies.replaced_by(rule))
    return (await pilot.policies.add(rule)).public()


@router.delete(
    "/policy/rules/{rule_id}",
    summary="Remove one of your rules",
    status_code=204,
    responses=error_responses(403, 404),
)
async def remove_rule(
    rule_id: str, request: Request, user: CurrentUser, pilot: PilotDep
) -> Response:
    rule = await pilot.policies.get(user.id, rule_id[:64])
    if rule is None:
        raise NotFoundError(f"Rule {rule_id[:64]!r} not found")
    _unlocked(request_api_key_id(request), rule)
    if not await pilot.policies.remove(user.id, rule_id[:64]):
        raise NotFoundError(f"Rule {rule_id[:64]!r} not found")
    return Response(status_code=204)


def _unlocked(own_key: str | None, rule: PolicyRule | None) -> None:
    """A rule narrowing the request's own API key stays: that key cannot lift it."""
    if rule is not None and rule.api_key_id is not None and rule.api_key_id == own_key:
        raise PolicyLockedError(
            f"{rule.describe()} narrows the API key of this request, so this key cannot "
            "change it; use another of your keys or `blockpilot policy remove`"
        )
