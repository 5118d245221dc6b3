"""A credential from what a person or a program typed: a JSON object, validated by type."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from blockpilot.blocks.base import validation_errors
from blockpilot.credentials.models import Credentials, CredentialsAdapter, require_bound_server
from blockpilot.errors import InvalidInputError

__all__ = ["parse_credentials"]


def parse_credentials(data: Any) -> Credentials:
    """A credential from user input (a JSON object); errors name the fields, never echo
    secret values.

    The types and their fields are in docs/library.md#credentials.

    Raises:
        InvalidInputError: *data* is not an object, or not a valid credential.
    """
    if not isinstance(data, dict):
        raise InvalidInputError(
            "Credential must be a JSON object such as "
            '{"provider": "openai", "type": "api_key", "api_key": "..."}'
        )
    payload = {k: v for k, v in data.items() if k != "id"}
    try:
        creds = CredentialsAdapter.validate_python(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {', '.join(v)}" for k, v in validation_errors(exc).items())
        raise InvalidInputError(
            f"Invalid credential: {problems}. Types: api_key (api_key), "
            "oauth2 (access_token, refresh_token, scopes), "
            "user_password (username, password; host for smtp), host_scoped (host, headers)"
        ) from None
    require_bound_server(creds)
    return creds
