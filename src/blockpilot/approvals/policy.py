"""Policy: for each run_block call, ``allow``, ``ask`` (a person reviews first) or ``deny``.

The operator sets the defaults (``BLOCKPILOT_POLICY_ASK_EFFECTS``,
``BLOCKPILOT_POLICY_DENY_EFFECTS``); rules stored per user, per API key and per chat session
can only *narrow* them: every rule that applies votes, and the strictest vote wins (deny > ask >
allow). So a user rule saying ``allow`` never lifts an operator's ``ask``; it only matters
when nothing stricter applies. docs/approvals.md has the whole story.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from blockpilot.blocks.base import Block, BlockEffect
from blockpilot.errors import InvalidInputError


class Decision(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


_STRICTNESS = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}


class Selector(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    """What a rule names."""

    EFFECT = "effect"
    BLOCK = "block"  # a block's id or its name
    SOURCE = "source"  # a block source (an imported OpenAPI description, an MCP server)
    PROVIDER = "provider"  # a credential provider the block uses (github, google, …)
    MODE = "mode"  # a chat session's mode: value "dry_run" forces dry runs


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule: *decision* for calls whose block matches ``selector == value``.

    ``session_id`` limits the rule to one chat session, ``api_key_id`` to the calls made
    with one of the user's API keys; ``user_id`` None is the operator.
    """

    selector: Selector
    value: str
    decision: Decision | None  # None for MODE rules (they force a mode, not a decision)
    user_id: str | None = None
    session_id: str | None = None
    id: str | None = None
    api_key_id: str | None = None

    def applies_to(self, *, session_id: str | None, api_key_id: str | None) -> bool:
        """Whether the rule's scope covers a call in *session_id* made with *api_key_id*."""
        if self.session_id is not None and self.session_id != session_id:
            return False
        return self.api_key_id is None or self.api_key_id == api_key_id

    def describe(self) -> str:
        who = "operator" if self.user_id is None else "user"
        if self.api_key_id is not None:
            who = "API key"
        if self.session_id is not None:
            who = "session"
        verb = self.decision.value if self.decision is not None else "force"
        return f"{who} rule: {verb} {self.selector.value}={self.value}"

    def public(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "selector": self.selector.value,
            "value": self.value,
            "decision": self.decision.value if self.decision is not None else "dry_run",
            "session_id": self.session_id,
            "api_key_id": self.api_key_id,
            "rule": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class BlockFacts:
    """What rules can name about a block."""

    block_id: str
    block_name: str
    effect: BlockEffect
    providers: frozenset[str]
    source: str | None

    @classmethod
    def of(cls, block: Block) -> BlockFacts:
        providers: set[str] = set()
        for info in block.Input.credentials_fields().values():
            providers.update(info.provider)
        return cls(
            block_id=block.id,
            block_name=block.name,
            effect=block.effect,
            providers=frozenset(providers),
            source=getattr(block, "source", None),
        )

    def matches(self, rule: PolicyRule) -> bool:
        value = rule.value
        if rule.selector is Selector.EFFECT:
            return self.effect.value == value
        if rule.selector is Selector.BLOCK:
            return value in (self.block_id, self.block_name)
        if rule.selector is Selector.SOURCE:
            return self.source == value
        if rule.selector is Selector.PROVIDER:
            return value in self.providers
        return False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one call, the rule that made it, and whether it must be a dry run."""

    decision: Decision
    rule: str
    force_dry_run: bool = False


ALLOWED = Verdict(Decision.ALLOW, "allowed: no rule asks for a review")
"""The verdict when no rule applies."""


def operator_rules(ask_effects: Iterable[str], deny_effects: Iterable[str]) -> list[PolicyRule]:
    """The operator's defaults as rules; an unknown effect name is a configuration error."""
    rules: list[PolicyRule] = []
    for decision, effects in ((Decision.ASK, ask_effects), (Decision.DENY, deny_effects)):
        for effect in effects:
            rules.append(PolicyRule(Selector.EFFECT, parse_effect(effect), decision))
    return rules


def parse_effect(value: str) -> str:
    effect = value.strip().lower()
    if effect not in {e.value for e in BlockEffect}:
        raise InvalidInputError(
            f"Unknown effect {value[:40]!r}; use one of: read, write, destructive"
        )
    return effect


def decide(
    facts: BlockFacts,
    rules: Iterable[PolicyRule],
    *,
    session_id: str | None,
    api_key_id: str | None = None,
    after: Verdict = ALLOWED,
) -> Verdict:
    """The strictest decision among the rules that apply to this block, in this session, for
    a call made with this API key (None: not made with an API key, e.g. the library).

    *after* is the verdict of rules that come before *rules*: deciding ``a + b`` is deciding
    *b* after the verdict on *a*, so a verdict on rules that do not change can be kept.
    """
    decision, reason = after.decision, after.rule
    force_dry_run = after.force_dry_run
    for rule in rules:
        if not rule.applies_to(session_id=session_id, api_key_id=api_key_id):
            continue
        if rule.selector is Selector.MODE:
            force_dry_run = force_dry_run or rule.value == "dry_run"
            continue
        if rule.decision is None or not facts.matches(rule):
            continue
        if _STRICTNESS[rule.decision] > _STRICTNESS[decision]:
            decision, reason = rule.decision, rule.describe()
    return Verdict(decision, reason, force_dry_run)


DECISIONS = ("allow", "ask", "deny")


def rule_from_options(
    *,
    effect: str | None,
    block: str | None,
    source: str | None,
    provider: str | None,
    decision: str,
    user_id: str,
    session_id: str | None,
    api_key_id: str | None = None,
) -> PolicyRule:
    """One rule from exactly one target option; a typed error says what is wrong."""
    targets = [
        (Selector.EFFECT, effect),
        (Selector.BLOCK, block),
        (Selector.SOURCE, source),
        (Selector.PROVIDER, provider),
    ]
    given = [(selector, value.strip()) for selector, value in targets if value is not None]
    if len(given) != 1 or not given[0][1]:
        raise InvalidInputError(
            "Name exactly one of --effect, --block, --source or --provider for the rule"
        )
    selector, value = given[0]
    if decision == "dry_run":
        raise InvalidInputError("dry_run is set per session with --session and --dry-run")
    if decision not in DECISIONS:
        raise InvalidInputError(f"--decision must be one of: {', '.join(DECISIONS)}")
    if selector is Selector.EFFECT:
        value = operator_rules([value], [])[0].value  # validates the effect name
    return PolicyRule(
        selector,
        value[:200],
        Decision(decision),
        user_id=user_id,
        session_id=session_id,
        api_key_id=api_key_id,
    )


def policy_document(
    operator: Iterable[PolicyRule], user_rules: Iterable[PolicyRule]
) -> dict[str, Any]:
    """What ``policy show --json`` prints and ``GET /api/v1/policy`` answers."""
    return {
        "operator": [r.public() for r in operator],
        "user": [r.public() for r in user_rules],
        "note": "The strictest rule that applies wins (deny > ask > allow): user, API key and "
        "session rules can narrow the operator's rules, never widen them.",
    }
