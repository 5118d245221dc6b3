"""``blockpilot policy`` and ``blockpilot reviews`` (docs/approvals.md), with the copilot's
calls made through ``blockpilot tool`` exactly as the model would make them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from typer.testing import Result

from tests.cli.test_cli import CALCULATOR_ID

Invoke = Callable[..., Result]

ADD = json.dumps({"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 2}})


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def test_policy_set_show_and_the_review_commands(cli: Invoke, demo: dict[str, str]) -> None:
    rule = _json(
        cli("policy", "set", "--user", "demo", "--effect", "read", "--decision", "ask", "--json")
    )
    assert rule["rule"] == "user rule: ask effect=read"
    shown = _json(cli("policy", "show", "--user", "demo", "--json"))
    assert [r["rule"] for r in shown["user"]] == ["user rule: ask effect=read"]
    assert "operator rule: ask effect=destructive" in [r["rule"] for r in shown["operator"]]
    table = cli("policy", "show", "--user", "demo")
    assert table.exit_code == 0 and "effect=read" in table.stdout

    asked = _json(cli("tool", "run_block", "--user", "demo", "--args", ADD))
    assert asked["type"] == "review_required"
    listed = _json(cli("reviews", "list", "--user", "demo", "--json"))
    assert [(r["review_id"], r["status"]) for r in listed] == [(asked["review_id"], "pending")]

    approved = _json(cli("reviews", "approve", asked["review_id"]))
    assert approved["status"] == "approved" and approved["decided_by"] == "cli"
    ran = _json(cli("tool", "run_block", "--user", "demo", "--args", ADD))
    assert ran["type"] == "block_output" and ran["outputs"] == {"result": [3.0]}
    listed = _json(cli("reviews", "list", "--user", "demo", "--json"))
    assert listed[0]["status"] == "used" and listed[0]["execution_id"] == ran["execution_id"]

    again = cli("reviews", "approve", asked["review_id"])
    assert again.exit_code != 0 and "only a pending review" in again.stderr


def test_reject_with_a_reason_and_bad_input(cli: Invoke, demo: dict[str, str]) -> None:
    added = cli(
        "policy", "set", "--user", "demo", "--block", "CalculatorBlock", "--decision", "ask"
    )
    assert added.exit_code == 0 and "ask block=CalculatorBlock" in added.stderr
    asked = _json(cli("tool", "run_block", "--user", "demo", "--args", ADD))
    rejected = _json(cli("reviews", "reject", asked["review_id"], "--reason", "not now"))
    assert rejected["status"] == "rejected" and rejected["reason"] == "not now"
    told_result = cli("tool", "run_block", "--user", "demo", "--args", ADD)
    assert told_result.exit_code != 0  # an error response: still one JSON document
    told = json.loads(told_result.stdout)
    assert told["code"] == "review_rejected" and "not now" in told["message"]

    missing = cli("reviews", "approve", "no-such-review")
    assert missing.exit_code == 3 and "not found" in missing.stderr
    no_target = cli("policy", "set", "--user", "demo", "--decision", "ask")
    assert no_target.exit_code != 0 and "exactly one of" in no_target.stderr
    bad_effect = cli("policy", "set", "--user", "demo", "--effect", "writes", "--decision", "ask")
    assert bad_effect.exit_code != 0 and "Unknown effect" in bad_effect.stderr


def test_keys_list_and_a_policy_rule_for_one_key(cli: Invoke, demo: dict[str, str]) -> None:
    created = _json(cli("keys", "create", "--user", "demo"))
    listed = _json(cli("keys", "list", "--user", "demo", "--json"))["keys"]
    [mine] = [k for k in listed if k["id"] == created["api_key_id"]]
    assert mine["prefix"] == created["api_key"][:10] and mine["revoked_at"] is None
    assert created["api_key"] not in json.dumps(listed)  # only the shown prefix, never the key
    readable = cli("keys", "list", "--user", "demo")
    assert readable.exit_code == 0 and created["api_key_id"] in readable.stdout

    rule = _json(
        cli(
            "policy",
            "set",
            "--user",
            "demo",
            "--key",
            created["api_key"][:10],
            "--effect",
            "write",
            "--decision",
            "deny",
            "--json",
        )
    )
    assert rule["api_key_id"] == created["api_key_id"]
    assert rule["rule"] == "API key rule: deny effect=write"
    shown = cli("policy", "show", "--user", "demo")
    assert shown.exit_code == 0 and created["api_key_id"][:8] in shown.stdout
    # The CLI acts without an API key: the key's rule does not narrow it.
    ran = _json(cli("tool", "run_block", "--user", "demo", "--args", ADD))
    assert ran["type"] == "block_output"

    unknown = cli(
        "policy",
        "set",
        "--user",
        "demo",
        "--key",
        "bp_nope",
        "--effect",
        "read",
        "--decision",
        "deny",
    )
    assert unknown.exit_code != 0 and "keys list" in unknown.stderr
