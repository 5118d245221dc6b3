"""The curated public API stays what the README documents."""

from __future__ import annotations

import collections.abc
import importlib
import importlib.metadata
import typing
from typing import Any

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
