"""The ``blockpilot`` CLI, in-process with Typer's CliRunner and as the real console script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from blockpilot import errors as error_module
from blockpilot.cli.errors import (
    EXIT_AUTH,
    EXIT_BLOCK_FAILED,
    EXIT_CODES,
    EXIT_CONFIGURATION,
    EXIT_CONFLICT,
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    exit_code_for,
    exit_code_for_exception,
)
from blockpilot.credentials.crypto import KeyRing
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings

CALCULATOR_ID = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
CANARY = "sk-canary-5f1e0c2b9a7d4e3f8a6b"
CANARY_PASSWORD = "pw-canary-93c1d7e2b8"
CANARY_HEADER = "hdr-canary-4a8f2e9d1c"
SCRIPT = Path(sys.executable).with_name("blockpilot")

Invoke = Callable[..., Result]


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}


def _one_error_line(result: Result) -> str:
    """The stderr of a failed command: exactly one ``Error: ...`` line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def _tool(
    cli: Invoke, name: str, args: dict[str, Any], *extra: str
) -> tuple[Result, dict[str, Any]]:
    result = cli("tool", name, "--user", "demo", "--args", json.dumps(args), *extra)
    return result, json.loads(result.stdout)  # the whole of stdout is one JSON document


# -- the README walkthrough ----------------------------------------------------------------


def test_readme_walkthrough_end_to_end(cli: Invoke) -> None:
    created = cli("users", "create", "demo")
    assert created.exit_code == 0
    user = json.loads(created.stdout)
    assert set(user) == {"id", "name", "api_key"}
    assert user["name"] == "demo" and user["api_key"].startswith("bp_")
    assert "shown only once" in created.stderr

    added = cli(
        "credentials",
        "add",
        "--user",
        "demo",
        "--json",
        json.dumps(
            {"provider": "openai", "type": "api_key", "api_key": CANARY, "title": "My OpenAI key"}
        ),
    )
    assert added.exit_code == 0, added.stderr
    meta = json.loads(added.stdout)
    assert (
        meta["provider"] == "openai"
        and meta["type"] == "api_key"
        and meta["title"] == "My OpenAI key"
    )
    assert CANARY not in added.stdout

    found = cli("blocks", "search", "calculator", "--json")
    assert found.exit_code == 0
    assert found.stdout and json.loads(found.stdout)[0]["id"] == CALCULATOR_ID
    assert "CalculatorBlock" in cli("blocks", "search", "add", "two", "numbers").stdout

    result, listed = _tool(cli, "find_block", {"query": "calculator"})
    assert result.exit_code == 0 and listed["type"] == "block_list"
    assert CALCULATOR_ID in [b["id"] for b in listed["blocks"]]

    result, details = _tool(cli, "run_block", {"block_id": CALCULATOR_ID, "input_data": {}})
    assert result.exit_code == 0
    assert details["type"] == "block_details"
    assert set(details["block"]["inputs"]["required"]) == {"operation", "a", "b"}

    args = {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 2, "b": 3}}
    result, output = _tool(cli, "run_block", args, "--session", details["session_id"])
    assert result.exit_code == 0
    assert output["type"] == "block_output"
    assert output["outputs"] == {"result": [5.0]}
    assert output["session_id"] == details["session_id"]

    ran = cli(
        "run",
        "CalculatorBlock",
        "--user",
        "demo",
        "--input",
        '{"operation": "multiply", "a": 6, "b": 7}',
    )
    assert ran.exit_code == 0, ran.stderr
    assert "executed successfully" in ran.stdout and "42.0" in ran.stdout

    history = cli("executions", "list", "--user", "demo", "--json")
    records = json.loads(history.stdout)
    assert [r["status"] for r in records] == ["completed", "completed"]
    shown = cli("executions", "show", "--user", "demo", records[0]["id"], "--json")
    assert json.loads(shown.stdout)["input"] == {"operation": "multiply", "a": 6, "b": 7}
    assert "completed" in cli("executions", "list", "--user", user["id"]).stdout


def test_readme_first_command_with_the_real_console_script(env: dict[str, str]) -> None:
    process_env = {**_clean_environ(), "BLOCKPILOT_HOME": env["BLOCKPILOT_HOME"]}  # key file path
    subprocess.run(
        [str(SCRIPT), "users", "create", "demo"], env=process_env, check=True, capture_output=True
    )
    done = subprocess.run(
        [
            str(SCRIPT),
            "run",
            "CalculatorBlock",
            "--user",
            "demo",
            "--input",
            '{"operation":"add","a":2,"b":3}',
        ],
        env=process_env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "executed successfully" in done.stdout and "5.0" in done.stdout
    assert done.stderr == ""
    assert (Path(env["BLOCKPILOT_HOME"]) / "encryption.key").stat().st_mode & 0o777 == 0o600


# -- tool: exactly one JSON document ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "kind", "exit_code"),
    [
        ("run_block", {"block_id": CALCULATOR_ID, "input_data": {}}, "block_details", 0),
        (
            "run_block",
            {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 1}},
            "block_output",
            0,
        ),
        (
            "run_block",
            {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "x": 1}},
            "input_validation_error",
            0,
        ),
        (
            "run_block",
            {"block_id": "AITextGeneratorBlock", "input_data": {}},
            "error",
            EXIT_NOT_FOUND,
        ),
        (
            "run_block",
            {"block_id": "1f292d4a-41a4-4977-9684-7c8d560b9f91", "input_data": {}},
            "setup_requirements",
            0,
        ),
        (
            "run_block",
            {"block_id": CALCULATOR_ID, "input_data": {"operation": "divide", "a": 1, "b": 0}},
            "error",
            EXIT_BLOCK_FAILED,
        ),
        ("run_block", {"input_data": {}}, "error", EXIT_USAGE),
        ("find_block", {"query": "zzqqxx"}, "no_results", 0),
        ("find_block", {}, "error", EXIT_USAGE),
        ("no_such_tool", {}, "error", EXIT_NOT_FOUND),
    ],
)
def test_tool_prints_exactly_one_json_document(
    cli: Invoke, demo: dict[str, str], name: str, args: dict[str, Any], kind: str, exit_code: int
) -> None:
    result, doc = _tool(cli, name, args)
    assert doc["type"] == kind
    assert result.exit_code == exit_code
    if kind == "error":
        assert exit_code == exit_code_for(doc["code"])
    assert result.stderr == ""  # the block failure is the output, not also a log line


def test_tool_stdout_stays_one_document_with_debug_logging(
    env: dict[str, str], demo: dict[str, str]
) -> None:
    args = json.dumps(
        {"block_id": CALCULATOR_ID, "input_data": {"operation": "add", "a": 1, "b": 2}}
    )
    done = subprocess.run(
        [str(SCRIPT), "--verbose", "tool", "run_block", "--user", "demo", "--args", args],
        env={**_clean_environ(), **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"result": [3.0]}
    assert "DEBUG" in done.stderr  # the logs went to stderr


def test_tool_reads_arguments_from_stdin(cli: Invoke, demo: dict[str, str]) -> None:
    args = {"block_id": CALCULATOR_ID, "input_data": {"operation": "subtract", "a": 5, "b": 3}}
    result = cli("tool", "run_block", "--user", "demo", "--args", "-", input=json.dumps(args))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["outputs"] == {"result": [2.0]}


def test_tool_with_another_users_session_is_not_found(cli: Invoke, demo: dict[str, str]) -> None:
    _, first = _tool(cli, "find_block", {"query": "email"})
    cli("users", "create", "mallory")
    result = cli(
        "tool",
        "find_block",
        "--user",
        "mallory",
        "--session",
        first["session_id"],
        "--args",
        '{"query": "x"}',
    )
    assert result.exit_code == EXIT_NOT_FOUND
    assert json.loads(result.stdout)["code"] == "session_not_found"


# -- malformed JSON and usage errors ---------------------------------------------------------

MALFORMED = [
    pytest.param('{"a": 1,', "line 1 column 9", id="truncated"),
    pytest.param("{'a': 1}", "line 1 column 2", id="single-quotes"),
    pytest.param('{"a": NaN}', "NaN", id="nan"),
    pytest.param('{"a": -Infinity}', "Infinity", id="infinity"),
    pytest.param('{"a": 1, "a": 2}', "duplicate key 'a'", id="duplicate-key"),
    pytest.param('{"a": ' * 65 + "1" + "}" * 65, "deeper than 64", id="too-deep"),
    pytest.param("[" * 200_000 + "]" * 200_000, "deeper than 64", id="recursion"),
]


@pytest.mark.parametrize(("document", "expected"), MALFORMED)
@pytest.mark.parametrize(
    "command",
    [
        ["tool", "run_block", "--user", "demo", "--args"],
        ["run", "CalculatorBlock", "--user", "demo", "--input"],
        ["credentials", "add", "--user", "demo", "--json"],
    ],
    ids=["tool", "run", "credentials"],
)
def test_malformed_json_is_a_usage_error_on_one_line(
    cli: Invoke, demo: dict[str, str], command: list[str], document: str, expected: str
) -> None:
    result = cli(*command, document)
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    line = _one_error_line(result)
    assert command[-1] in line and expected in line


@pytest.mark.parametrize(("lists", "reaches_the_tool"), [(63, True), (64, False)])
def test_json_nesting_limit_is_64_levels(
    cli: Invoke, demo: dict[str, str], lists: int, reaches_the_tool: bool
) -> None:
    args = (
        '{"query": "x", "deep": ' + "[" * lists + "]" * lists + "}"
    )  # the outer object is level 1
    result = cli("tool", "find_block", "--user", "demo", "--args", args)
    if reaches_the_tool:
        assert json.loads(result.stdout)["code"] == "invalid_arguments"  # the tool's own answer
    else:
        assert result.stdout == "" and "deeper than 64" in _one_error_line(result)


def test_input_must_be_an_object(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli("run", "CalculatorBlock", "--user", "demo", "--input", "[1, 2]")
    assert result.exit_code == EXIT_USAGE
    assert "--input must be a JSON object" in _one_error_line(result)


def test_missing_option_is_a_one_line_usage_error(cli: Invoke) -> None:
    result = cli("tool", "run_block")
    assert result.exit_code == EXIT_USAGE
    assert "--user" in _one_error_line(result)


def test_unknown_command_is_a_one_line_usage_error(cli: Invoke) -> None:
    result = cli("launch")
    assert result.exit_code == EXIT_USAGE
    assert "No such command" in _one_error_line(result)


# -- not found, conflicts --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["tool", "find_block", "--user", "nobody", "--args", '{"query": "email"}'],
        ["run", "CalculatorBlock", "--user", "nobody", "--input", "{}"],
        ["credentials", "list", "--user", "nobody"],
        ["executions", "list", "--user", "nobody"],
        ["keys", "create", "--user", "nobody"],
    ],
)
def test_unknown_user_is_not_found(cli: Invoke, demo: dict[str, str], command: list[str]) -> None:
    result = cli(*command)
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stdout == ""
    assert "No user 'nobody'" in _one_error_line(result)


def test_user_found_by_id_as_well_as_name(cli: Invoke, demo: dict[str, str]) -> None:
    assert cli("credentials", "list", "--user", demo["id"]).exit_code == 0


@pytest.mark.parametrize(
    "command",
    [
        ["blocks", "show", "NoSuchBlock"],
        ["run", "NoSuchBlock", "--user", "demo"],
        ["credentials", "delete", "--user", "demo", "0b1c2d3e-0000-4000-8000-000000000000"],
        ["executions", "show", "--user", "demo", "copilot-x-y"],
        ["keys", "revoke", "bp_not_a_key"],
    ],
)
def test_unknown_entities_are_not_found(
    cli: Invoke, demo: dict[str, str], command: list[str]
) -> None:
    result = cli(*command)
    assert result.exit_code == EXIT_NOT_FOUND
    _one_error_line(result)


def test_duplicate_user_is_a_conflict(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli("users", "create", "demo")
    assert result.exit_code == EXIT_CONFLICT
    assert "already exists" in _one_error_line(result)


def test_invalid_user_name_is_a_usage_error(cli: Invoke) -> None:
    result = cli("users", "create", "-bad name")
    assert result.exit_code == EXIT_USAGE


# -- credentials never show secrets ----------------------------------------------------------


def test_credentials_list_never_shows_the_secret(cli: Invoke, demo: dict[str, str]) -> None:
    payloads = [
        {"provider": "openai", "type": "api_key", "api_key": CANARY, "title": "key"},
        {
            "provider": "smtp",
            "type": "user_password",
            "username": "me@example.com",
            "password": CANARY_PASSWORD,
            "host": "smtp.example.com",
        },
        {
            "provider": "http",
            "type": "host_scoped",
            "host": "api.example.com",
            "headers": {"X-Api-Key": CANARY_HEADER},
        },
    ]
    outputs = []
    for payload in payloads:
        added = cli(
            "credentials", "add", "--user", "demo", "--json", "-", input=json.dumps(payload)
        )
        assert added.exit_code == 0, added.stderr
        outputs.append(added.stdout + added.stderr)
    listed_table = cli("credentials", "list", "--user", "demo")
    listed_json = cli("credentials", "list", "--user", "demo", "--json")
    outputs += [listed_table.stdout + listed_table.stderr, listed_json.stdout + listed_json.stderr]
    for text in outputs:
        for secret in (CANARY, CANARY_PASSWORD, CANARY_HEADER):
            assert secret not in text
    metas = json.loads(listed_json.stdout)
    assert {m["provider"] for m in metas} == {"openai", "smtp", "http"}
    assert "api.example.com" in listed_table.stdout


def test_invalid_credential_is_rejected_without_echoing_it(
    cli: Invoke, demo: dict[str, str]
) -> None:
    payload = json.dumps({"provider": "openai", "type": "api_key", "apikey": CANARY})
    result = cli("credentials", "add", "--user", "demo", "--json", payload)
    assert result.exit_code == EXIT_USAGE
    assert CANARY not in _one_error_line(result)


def test_credentials_default_and_delete(cli: Invoke, demo: dict[str, str]) -> None:
    payload = json.dumps({"provider": "openai", "type": "api_key", "api_key": CANARY})
    meta = json.loads(
        cli("credentials", "add", "--user", "demo", "--json", payload, "--default").stdout
    )
    assert meta["is_default"] is True
    assert cli("credentials", "delete", "--user", "demo", meta["id"]).exit_code == 0
    assert json.loads(cli("credentials", "list", "--user", "demo", "--json").stdout) == []
    assert cli("credentials", "delete", "--user", "demo", meta["id"]).exit_code == EXIT_NOT_FOUND


def test_a_credential_of_another_user_cannot_be_deleted(cli: Invoke, demo: dict[str, str]) -> None:
    payload = json.dumps({"provider": "openai", "type": "api_key", "api_key": CANARY})
    meta = json.loads(cli("credentials", "add", "--user", "demo", "--json", payload).stdout)
    cli("users", "create", "mallory")
    assert cli("credentials", "delete", "--user", "mallory", meta["id"]).exit_code == EXIT_NOT_FOUND
    assert len(json.loads(cli("credentials", "list", "--user", "demo", "--json").stdout)) == 1


# -- encryption keys -------------------------------------------------------------------------


def test_keys_rotate_then_only_the_new_key_decrypts(
    cli: Invoke, demo: dict[str, str], home: Path, key: str
) -> None:
    old, new = key, KeyRing.generate_key()
    ids = []
    for secret in (CANARY, CANARY + "-2"):
        payload = json.dumps({"provider": "openai", "type": "api_key", "api_key": secret})
        ids.append(
            json.loads(cli("credentials", "add", "--user", "demo", "--json", payload).stdout)["id"]
        )

    rotated = cli("keys", "rotate", "--json", BLOCKPILOT_ENCRYPTION_KEYS=f"{new},{old}")
    assert rotated.exit_code == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["rotated"] == 2 and report["remaining"] == 0
    assert report["active_key_id"] == KeyRing.key_id_of(new)

    again = cli("keys", "rotate", BLOCKPILOT_ENCRYPTION_KEYS=f"{new},{old}")  # safe to re-run
    assert again.exit_code == 0 and "Nothing to rotate" in again.stdout

    assert (
        cli("credentials", "list", "--user", "demo", BLOCKPILOT_ENCRYPTION_KEYS=new).exit_code == 0
    )
    stale = cli("credentials", "list", "--user", "demo", BLOCKPILOT_ENCRYPTION_KEYS=old)
    assert stale.exit_code == EXIT_CONFIGURATION

    async def decrypt_all_with_new_only() -> list[str]:
        pilot = await Pilot.open(Settings.load(home=home, encryption_keys=(new,)))
        try:
            secrets = []
            for cred_id in ids:
                creds = await pilot.credential_store.get(demo["id"], cred_id)
                assert creds is not None
                secrets += creds.secret_values()
            return secrets
        finally:
            await pilot.close()

    assert asyncio.run(decrypt_all_with_new_only()) == [CANARY, CANARY + "-2"]


def test_wrong_key_at_start_is_a_configuration_error(cli: Invoke, demo: dict[str, str]) -> None:
    payload = json.dumps({"provider": "openai", "type": "api_key", "api_key": CANARY})
    cli("credentials", "add", "--user", "demo", "--json", payload)
    result = cli(
        "credentials", "list", "--user", "demo", BLOCKPILOT_ENCRYPTION_KEYS=KeyRing.generate_key()
    )
    assert result.exit_code == EXIT_CONFIGURATION
    assert "encryption key cannot decrypt" in _one_error_line(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BLOCKPILOT_ENCRYPTION_KEYS", "not-a-key", "Encryption key at position 1 is malformed"),
        ("BLOCKPILOT_BLOCK_TIMEOUT_SECONDS", "-1", "BLOCKPILOT_BLOCK_TIMEOUT_SECONDS"),
        ("BLOCKPILOT_LOG_LEVEL", "LOUD", "BLOCKPILOT_LOG_LEVEL"),
        (
            "BLOCKPILOT_DATABASE_URL",
            "postgresql+nosuchdriver://localhost/db",
            "BLOCKPILOT_DATABASE_URL",
        ),
        (
            "BLOCKPILOT_COPILOT_EXCLUDED_BLOCK_TYPES",
            "NOT_A_TYPE",
            "BLOCKPILOT_COPILOT_EXCLUDED_BLOCK_TYPES",
        ),
    ],
)
def test_bad_configuration_is_exit_5_on_one_line(
    cli: Invoke, variable: str, value: str, expected: str
) -> None:
    result = cli("users", "list", **{variable: value})
    assert result.exit_code == EXIT_CONFIGURATION
    assert expected in _one_error_line(result)


def test_keys_generate_prints_a_valid_key(cli: Invoke) -> None:
    result = cli("keys", "generate")
    assert result.exit_code == 0
    generated = result.stdout.strip()
    assert len(generated) == 44 and KeyRing.key_id_of(generated)


def test_api_keys_create_and_revoke(cli: Invoke, demo: dict[str, str]) -> None:
    created = json.loads(cli("keys", "create", "--user", "demo").stdout)
    assert created["user_id"] == demo["id"] and created["api_key"].startswith("bp_")
    assert cli("keys", "revoke", created["api_key"]).exit_code == 0
    assert cli("keys", "revoke", created["api_key"]).exit_code == EXIT_NOT_FOUND
    assert cli("keys", "revoke", demo["api_key"]).exit_code == 0


# -- blocks ----------------------------------------------------------------------------------


def test_blocks_list_json_has_the_documented_fields(cli: Invoke) -> None:
    result = cli("blocks", "list", "--json")
    blocks = json.loads(result.stdout)
    assert {"id", "name", "description", "categories", "block_type", "disabled"} <= set(blocks[0])
    by_name = {b["name"]: b for b in blocks}
    assert by_name["CalculatorBlock"]["disabled"] is False
    assert by_name["NoteBlock"]["copilot_excluded"] is True


def test_disabled_blocks_show_as_disabled(cli: Invoke, demo: dict[str, str]) -> None:
    blocks = json.loads(
        cli("--json", "blocks", "list", BLOCKPILOT_DISABLED_BLOCKS="CalculatorBlock").stdout
    )
    assert {b["name"]: b["disabled"] for b in blocks}["CalculatorBlock"] is True
    ran = cli(
        "run",
        "CalculatorBlock",
        "--user",
        "demo",
        "--input",
        "{}",
        BLOCKPILOT_DISABLED_BLOCKS="CalculatorBlock",
    )
    assert ran.exit_code == EXIT_NOT_FOUND
    assert "disabled" in _one_error_line(ran)


def test_blocks_show_by_name_or_id(cli: Invoke) -> None:
    by_name = json.loads(cli("blocks", "show", "calculator", "--json").stdout)
    by_id = json.loads(cli("blocks", "show", CALCULATOR_ID, "--json").stdout)
    assert by_name == by_id
    assert by_id["input_schema"]["required"] == ["operation", "a", "b"]
    assert "result" in by_id["output_schema"]["properties"]
    shown = cli("blocks", "show", "AITextGeneratorBlock")
    assert shown.exit_code == 0
    assert "openai" in shown.stdout and "prompt" in shown.stdout


def test_blocks_search_without_results_is_not_an_error(cli: Invoke) -> None:
    result = cli("blocks", "search", "zzqqxx", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_block_text_is_never_read_as_rich_markup(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli(
        "run",
        "FillTextTemplateBlock",
        "--user",
        "demo",
        "--input",
        '{"format": "[bold]x[/bold] {{ n }}", "values": {"n": 1}}',
    )
    assert result.exit_code == 0
    assert "[bold]x[/bold] 1" in result.stdout


# -- run, for people -------------------------------------------------------------------------


def test_run_shows_inputs_when_inputs_are_missing(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli("run", "CalculatorBlock", "--user", "demo")
    assert result.exit_code == EXIT_USAGE
    assert "needs inputs" in result.stdout and "operation" in result.stdout
    assert '"operation": "add"' in result.stdout  # a runnable example


def test_run_lists_what_to_connect(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli("run", "AITextGeneratorBlock", "--user", "demo", "--input", '{"prompt": "hi"}')
    assert result.exit_code == EXIT_AUTH
    assert "openai" in result.stdout and "credentials add --user demo" in result.stdout


def test_run_block_failure_is_red_one_line_and_exit_7(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli(
        "run", "CalculatorBlock", "-u", "demo", "-i", '{"operation": "divide", "a": 1, "b": 0}'
    )
    assert result.exit_code == EXIT_BLOCK_FAILED
    assert "Cannot divide by zero" in _one_error_line(result)


def test_run_invalid_values_list_the_problems(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli(
        "run", "CalculatorBlock", "-u", "demo", "-i", '{"operation": "add", "a": 1, "b": "x"}'
    )
    assert result.exit_code == EXIT_USAGE
    assert "b" in result.stdout and "valid number" in result.stdout


def test_run_dry_run_executes_nothing(cli: Invoke, demo: dict[str, str]) -> None:
    result = cli(
        "run",
        "CalculatorBlock",
        "-u",
        "demo",
        "-i",
        '{"operation": "add", "a": 1, "b": 1}',
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["is_dry_run"] is True and doc["outputs"] == {}


# -- unexpected failures, and the error table --------------------------------------------------


def test_unexpected_failure_is_one_line_and_the_traceback_goes_to_the_log(
    cli: Invoke, demo: dict[str, str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"database exploded near {CANARY}")

    monkeypatch.setattr("blockpilot.storage.users.UserStore.list", broken)
    result = cli("users", "list")
    assert result.exit_code == EXIT_FAILURE
    line = _one_error_line(result)
    assert "unexpected failure" in line and "see the log" in line
    assert CANARY not in result.stderr
    log = (home / "logs" / "cli.log").read_text()
    assert "RuntimeError" in log and "Traceback" in log
    assert CANARY not in log  # scrubbed like every log line

    verbose = cli("--verbose", "users", "list")
    assert verbose.exit_code == EXIT_FAILURE
    assert "Traceback" in verbose.stderr and verbose.stderr.strip().splitlines()[-1].startswith(
        "Error: "
    )


def test_every_error_class_has_an_exit_code() -> None:
    classes = [
        obj
        for obj in vars(error_module).values()
        if isinstance(obj, type) and issubclass(obj, error_module.BlockpilotError)
    ]
    assert len(classes) > 20
    for cls in classes:
        assert cls.code in EXIT_CODES, cls


def test_exit_code_of_an_unlisted_subclass_follows_its_parent() -> None:
    class QuotaMissingError(error_module.NotFoundError):
        code = "quota_missing"

    assert exit_code_for_exception(QuotaMissingError("x")) == EXIT_NOT_FOUND
    assert exit_code_for("never_heard_of_it") == EXIT_FAILURE


def test_global_json_flag_applies_to_listings(cli: Invoke, demo: dict[str, str]) -> None:
    users = json.loads(cli("--json", "users", "list").stdout)
    assert [u["name"] for u in users] == ["demo"]


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.startswith("blockpilot ")


def test_missing_database_driver_is_a_configuration_error_not_a_crash(cli: Invoke) -> None:
    # Regression: a postgresql+asyncpg URL without asyncpg installed crashed with a traceback.
    result = cli("users", "list", BLOCKPILOT_DATABASE_URL="mysql+nosuchdriver://db/x")
    assert result.exit_code == EXIT_CONFIGURATION
    assert "driver" in _one_error_line(result)
