"""The curated public API stays what the README documents."""

from __future__ import annotations

import importlib

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


def test_every_public_name_resolves() -> None:
    module = importlib.import_module("blockpilot")
    for name in blockpilot.__all__:
        assert getattr(module, name) is not None


def test_error_codes_are_unique_per_meaning() -> None:
    from blockpilot import errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(isinstance(c.code, str) and c.code for c in classes)
    # Only a few deliberate aliases share a code (block input errors are input errors).
    codes = [c.code for c in classes]
    duplicated = {c for c in codes if codes.count(c) > 1}
    assert duplicated <= {"invalid_input", "block_failed"}
