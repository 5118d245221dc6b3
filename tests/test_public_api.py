"""The curated public API stays what the README documents."""

from __future__ import annotations

import collections.abc
import importlib
import importlib.metadata
import typing
from typing import Any

import pytest

import blockpilot

EXPECTED = {
    "APIKeyCredentials", "Block", "BlockCategory", "BlockDetailsResponse", "BlockError",
    "BlockExecutionError", "BlockListResponse", "BlockOutput", "BlockOutputResponse",
    "BlockRegistry", "BlockSchemaInput", "BlockSchemaOutput", "BlockType", "BlockpilotError",
    "ConfigurationError", "CredentialsField", "CredentialsFieldInfo", "CredentialsMeta",
    "CredentialsMetaInput", "ErrorResponse", "ExecutionContext", "HostScopedCredentials",
    "InputValidationErrorResponse", "InvalidInputError", "NeedLoginResponse", "NoResultsResponse",
    "NotFoundError", "OAuth2Credentials", "Pilot", "SchemaField", "Settings",
    "SetupRequirementsResponse", "ToolResponseBase", "UserPasswordCredentials", "__version__",
}  # fmt: skip


def test_public_api_is_exactly_the_documented_names() -> None:
    assert set(blockpilot.__all__) == EXPECTED


def test_every_public_name_is_the_blockpilot_object_of_that_name() -> None:
    module = importlib.import_module("blockpilot")
    for name in set(blockpilot.__all__) - {"BlockOutput", "__version__"}:
        value = getattr(module, name)
        assert value.__name__ == name, name
        assert value.__module__.startswith("blockpilot."), (name, value.__module__)
    # A block's run yields (output name, value) pairs.
    assert typing.get_origin(blockpilot.BlockOutput) is collections.abc.AsyncIterator
    assert typing.get_args(blockpilot.BlockOutput)[0] == tuple[str, Any]


def test_version_is_the_installed_distributions() -> None:
    assert blockpilot.__version__ == importlib.metadata.version("blockpilot")


def test_error_codes_are_unique_per_meaning() -> None:
    from blockpilot import errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(isinstance(c.code, str) and c.code for c in classes)
    # Only a few deliberate aliases share a code (block input errors are input errors).
    codes = [c.code for c in classes]
    duplicated = {c for c in codes if codes.count(c) > 1}
    assert duplicated <= {"invalid_input", "block_failed"}


# Modules with a curated ``__all__`` (HTTPX style): what plug-in authors and integrators import.
CURATED_MODULES = (
    "blockpilot.blocks.base",
    "blockpilot.blocks.schema",
    "blockpilot.credentials.fields",
    "blockpilot.credentials.models",
    "blockpilot.errors",
    "blockpilot.executions.context",
    "blockpilot.integrations",
    "blockpilot.json_schema",
    "blockpilot.limits",
    "blockpilot.links",
    "blockpilot.net",
    "blockpilot.provider_facts",
    "blockpilot.testing",
    "blockpilot.tools.schemas",
)


@pytest.mark.parametrize("name", CURATED_MODULES)
def test_curated_modules_list_names_that_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), name
    assert [n for n in exported if not hasattr(module, n)] == []


def test_every_top_level_name_is_public_in_its_home_module() -> None:
    for name in set(blockpilot.__all__) - {"__version__"}:
        value = getattr(blockpilot, name)
        home = getattr(value, "__module__", None)
        if home in CURATED_MODULES:
            assert name in importlib.import_module(home).__all__, (name, home)
