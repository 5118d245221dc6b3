"""The whole blockpilot exception tree.

Every error carries a stable machine ``code`` (part of the public contract: tool
responses, HTTP bodies, MCP results and CLI exit codes are derived from it), a
human ``message`` that says what to do next, and optional structured ``details``.
Messages never contain secret values.

::

    BlockpilotError                         error
    ├── ConfigurationError                  configuration_error
    │   ├── EncryptionKeyError              encryption_key_error
    │   └── StorageUnusableError            storage_unusable
    ├── InvalidInputError                   invalid_input
    │   ├── MalformedBodyError              malformed_body (HTTP: a body that is not JSON)
    │   ├── UnsupportedMediaTypeError       unsupported_media_type (HTTP)
    │   ├── SchemaConversionError           invalid_input (a schema a dialect cannot express)
    │   ├── SpecError                       invalid_input (a source's description; ``details.path``)
    │   ├── StrictJSONError                 malformed_json (also a ValueError)
    │   ├── TokenError                      invalid_token (a signed link or cookie; ``reason``)
    │   │   └── SetupLinkError              invalid_setup_link (a setup or sign-in link)
    │   ├── OAuthStateError                 oauth_state_invalid (``reason``)
    │   ├── OAuthCallbackError              oauth_callback_failed
    │   ├── OAuthDiscoveryError             oauth_discovery_failed (an MCP server's OAuth metadata)
    │   └── OAuthUserMismatchError          oauth_user_mismatch
    ├── AuthenticationRequiredError         auth_required
    ├── AdminRequiredError                  admin_required
    ├── PolicyLockedError                   policy_locked (a key lifting its own rule)
    ├── NotFoundError                       not_found
    │   ├── BlockNotFoundError              block_not_found
    │   ├── UserNotFoundError               user_not_found
    │   ├── CredentialNotFoundError         credential_not_found
    │   ├── SessionNotFoundError            session_not_found
    │   ├── ExecutionNotFoundError          execution_not_found
    │   ├── WorkspaceFileNotFoundError      file_not_found
    │   ├── ToolNotFoundError               tool_not_found
    │   ├── ProviderNotConfiguredError      provider_not_configured
    │   └── OAuthFlowNotFoundError          oauth_flow_not_found
    ├── ConflictError                       conflict
    │   └── LeaseLostError                  lease_lost (a lock's lease ran out while held)
    ├── LockUnavailableError                lock_unavailable (the lock service is down)
    ├── RequestTooLargeError                request_too_large (HTTP: a body over the limit)
    ├── RateLimitedError                    rate_limited
    │   └── TooManySessionsError            too_many_sessions
    ├── OriginNotAllowedError               origin_not_allowed
    ├── BlockLoadError                      block_load_failed
    ├── BlockError                          block_failed
    │   ├── BlockInputError                 invalid_input
    │   ├── BlockOutputError                invalid_output
    │   ├── BlockExecutionError             block_failed
    │   │   └── UpstreamAPIError            block_failed (a provider's API said no)
    │   │       └── UpstreamRateLimitedError block_failed (HTTP 429; ``retry_after``)
    │   └── BlockTimeoutError               block_timeout
    ├── CredentialsError                    credentials_error
    │   ├── CredentialsUnavailableError     credentials_unavailable
    │   ├── DecryptionError                 decryption_failed
    │   ├── OAuthRefreshError               oauth_refresh_failed
    │   │   └── ReauthorizationRequiredError reauthorization_required
    │   ├── InsufficientScopeError          insufficient_scope (an upstream's 403)
    │   └── TokenEndpointError              token_endpoint_error
    │       ├── TokenGrantRefusedError      token_grant_refused (invalid_grant)
    │       ├── TokenClientRefusedError     token_client_refused (invalid_client, ...)
    │       ├── TokenRequestRefusedError    token_request_refused (any other error code)
    │       ├── TokenEndpointUnavailableError token_endpoint_unavailable
    │       └── TokenResponseInvalidError   token_response_invalid
    ├── WorkspaceError                      workspace_error
    │   ├── WorkspacePathError              invalid_path
    │   ├── WorkspaceQuotaError             file_too_large
    │   └── QuotaExceededError              quota_exceeded
    └── NetworkError                        network_error
        ├── DestinationBlockedError         destination_blocked
        ├── ResponseTooLargeError           response_too_large
        ├── UpstreamTimeoutError            upstream_timeout
        └── ChatProviderError               chat_provider_error (blockpilot chat's model)

Below the tree, :class:`InternalSignal` and its subclasses are control flow inside one
package (an OpenAPI operation to skip, an MCP server's 401): they are caught there and become
an outcome or one of the errors above, so they have no code and reach no user.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class BlockpilotError(Exception):
    """Root of every error blockpilot raises on purpose.

    Attributes:
        code: Stable machine-readable code.
        message: Human-readable explanation that says what to fix.
        details: Optional structured data (never secrets).
    """

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigurationError(BlockpilotError):
    """Configuration (environment, key file, provider setup) is invalid."""

    code = "configuration_error"


class EncryptionKeyError(ConfigurationError):
    """The encryption key is missing, malformed or cannot decrypt stored data."""

    code = "encryption_key_error"


class StorageUnusableError(ConfigurationError):
    """The database or the data folder cannot be used at start: damaged, not writable or
    full. The service refuses to start rather than run on (or over) it (``docs/storage.md``)."""

    code = "storage_unusable"


class InvalidInputError(BlockpilotError):
    """A caller sent arguments that are malformed or of the wrong shape."""

    code = "invalid_input"


class AuthenticationRequiredError(BlockpilotError):
    """The operation needs a signed-in user."""

    code = "auth_required"


class AdminRequiredError(BlockpilotError):
    """The operation needs an operator: a user named in ``BLOCKPILOT_ADMIN_USERS``
    (docs/sources.md)."""

    code = "admin_required"


class PolicyLockedError(BlockpilotError):
    """A request tried to remove or replace a policy rule that narrows the very API key it
    was made with; another key of the user, or the CLI, may (docs/approvals.md)."""

    code = "policy_locked"


class NotFoundError(BlockpilotError):
    """The named entity does not exist for this user."""

    code = "not_found"


class BlockNotFoundError(NotFoundError):
    code = "block_not_found"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


class CredentialNotFoundError(NotFoundError):
    code = "credential_not_found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class ExecutionNotFoundError(NotFoundError):
    code = "execution_not_found"


class WorkspaceFileNotFoundError(NotFoundError):
    code = "file_not_found"


class ConflictError(BlockpilotError):
    """The entity already exists (for example a user name that is taken)."""

    code = "conflict"


class RateLimitedError(BlockpilotError):
    """The user is over a rate limit or concurrency cap; try again later.

    Attributes:
        retry_after: Whole seconds (at least 1) after which a retry may succeed.
    """

    code = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: float = 1, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, math.ceil(retry_after))


class TooManySessionsError(RateLimitedError):
    """The user holds as many open MCP sessions as allowed; close one or wait for one to
    expire (``docs/mcp.md``)."""

    code = "too_many_sessions"


class OriginNotAllowedError(BlockpilotError):
    """A request's ``Origin`` or ``Host`` header names a site this service does not serve
    (a cross-site or DNS-rebinding request; ``docs/mcp.md``)."""

    code = "origin_not_allowed"


class BlockLoadError(BlockpilotError):
    """A block class failed its load-time checks."""

    code = "block_load_failed"


class BlockError(BlockpilotError):
    """A block failed while running; the message is safe to show the model."""

    code = "block_failed"

    def __init__(
        self,
        message: str,
        *,
        block_name: str = "",
        block_id: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.block_name = block_name
        self.block_id = block_id


class BlockInputError(BlockError):
    code = "invalid_input"


class BlockOutputError(BlockError):
    code = "invalid_output"


class BlockExecutionError(BlockError):
    code = "block_failed"


class UpstreamAPIError(BlockExecutionError):
    """A provider's API refused or failed a block's request (HTTP status in ``details``)."""

    code = "block_failed"


class UpstreamRateLimitedError(UpstreamAPIError):
    """A provider's API rate-limited a block's request; ``retry_after`` is in seconds."""

    code = "block_failed"

    def __init__(self, message: str, *, retry_after: float = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, math.ceil(retry_after))


class BlockTimeoutError(BlockError):
    code = "block_timeout"


class CredentialsError(BlockpilotError):
    code = "credentials_error"


class CredentialsUnavailableError(CredentialsError):
    code = "credentials_unavailable"


class DecryptionError(CredentialsError):
    """Ciphertext could not be decrypted: wrong key, tampering, or a moved row."""

    code = "decryption_failed"


class OAuthRefreshError(CredentialsError):
    """A token refresh failed transiently; stored tokens are kept intact."""

    code = "oauth_refresh_failed"


class ReauthorizationRequiredError(OAuthRefreshError):
    """The provider refused the refresh token; the user must reconnect."""

    code = "reauthorization_required"


class InsufficientScopeError(CredentialsError):
    """The upstream refused the token for a missing scope (HTTP 403 ``insufficient_scope``).

    ``details["scopes"]`` names the scopes the upstream asked for.
    """

    code = "insufficient_scope"


class TokenEndpointError(CredentialsError):
    """An OAuth token endpoint did not issue tokens (docs/oauth.md).

    Attributes:
        error: The RFC 6749 section 5.2 ``error`` code the endpoint sent, if any.
        status: The HTTP status of its answer, if it answered.
    """

    code = "token_endpoint_error"

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        known = {"error": error, "status": status}
        super().__init__(
            message,
            details={**{k: v for k, v in known.items() if v is not None}, **(details or {})},
        )
        self.error = error
        self.status = status


class TokenGrantRefusedError(TokenEndpointError):
    """``invalid_grant``: the code or refresh token is spent, expired or revoked."""

    code = "token_grant_refused"


class TokenClientRefusedError(TokenEndpointError):
    """``invalid_client`` / ``unauthorized_client``: the OAuth app is at fault, not the user."""

    code = "token_client_refused"


class TokenRequestRefusedError(TokenEndpointError):
    """Any other refusal (``invalid_request``, ``invalid_scope``, ``invalid_target``, ...)."""

    code = "token_request_refused"


class TokenEndpointUnavailableError(TokenEndpointError):
    """Not reached, timed out, a 5xx/429 without an error body, or an answer over the cap."""

    code = "token_endpoint_unavailable"


class TokenResponseInvalidError(TokenEndpointError):
    """A success answer without a usable access token (or with malformed fields)."""

    code = "token_response_invalid"


class WorkspaceError(BlockpilotError):
    code = "workspace_error"


class WorkspacePathError(WorkspaceError):
    code = "invalid_path"


class WorkspaceQuotaError(WorkspaceError):
    code = "file_too_large"


class QuotaExceededError(WorkspaceError):
    """The user's workspace would hold more than ``BLOCKPILOT_MAX_WORKSPACE_BYTES_PER_USER``;
    delete files first (``docs/configuration.md``)."""

    code = "quota_exceeded"


class NetworkError(BlockpilotError):
    code = "network_error"


class DestinationBlockedError(NetworkError):
    """The request target resolves to an address blocked by the SSRF guard."""

    code = "destination_blocked"


class ResponseTooLargeError(NetworkError):
    code = "response_too_large"


class UpstreamTimeoutError(NetworkError):
    code = "upstream_timeout"


class MalformedBodyError(InvalidInputError):
    """The request body is not parseable JSON (syntax, encoding, NaN, nesting)."""

    code = "malformed_body"


class UnsupportedMediaTypeError(InvalidInputError):
    """The request body is not declared as JSON."""

    code = "unsupported_media_type"


class SchemaConversionError(InvalidInputError):
    """A schema cannot be expressed in a provider's dialect (e.g. it is recursive)."""


class SpecError(InvalidInputError):
    """A source's description (an OpenAPI document, an MCP source's stored listing) cannot be
    used; ``details['path']`` is where the problem is (docs/sources.md)."""

    @classmethod
    def at(cls, path: str, problem: str) -> SpecError:
        """The error for *problem* at *path* (``$.paths./pets.get``) of the description."""
        return cls(
            f"Invalid OpenAPI description at {path}: {problem}",
            details={"path": path, "problem": problem},
        )


class OAuthDiscoveryError(InvalidInputError):
    """An MCP server's OAuth metadata could not be found or used (says which step failed)."""

    code = "oauth_discovery_failed"


class ToolNotFoundError(NotFoundError):
    """A tool call names no tool of this service."""

    code = "tool_not_found"


class RequestTooLargeError(BlockpilotError):
    """The request body is larger than the route accepts."""

    code = "request_too_large"


class ChatProviderError(NetworkError):
    """The chat model endpoint failed or answered something that is not a chat completion."""

    code = "chat_provider_error"


class StrictJSONError(InvalidInputError, ValueError):
    """A JSON document was refused (``blockpilot.strict_json``), in words safe to show the
    sender; still a :class:`ValueError`, as JSON parse errors are."""

    code = "malformed_json"


class TokenError(InvalidInputError):
    """A signed token (a setup, sign-in or review link, a session cookie) that cannot be used:
    ``reason`` is ``invalid`` (malformed, tampered, foreign) or ``expired``."""

    code = "invalid_token"
    REASONS: ClassVar[dict[str, str]] = {
        "invalid": "The link is not valid: it is incomplete or was changed",
        "expired": "The link has expired",
    }

    def __init__(
        self, message: str = "", *, reason: str = "invalid", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message or self.REASONS.get(reason, reason), details=details)
        self.reason = reason


class SetupLinkError(TokenError):
    """A setup or sign-in link (``docs/service.md``) that cannot be used."""

    code = "invalid_setup_link"


class OAuthStateError(InvalidInputError):
    """An OAuth ``state`` that cannot be used: ``reason`` is ``unknown`` (never issued,
    tampered or already used), ``expired`` or ``wrong_provider``."""

    code = "oauth_state_invalid"
    REASONS: ClassVar[dict[str, str]] = {
        "unknown": "This sign-in link is not valid or was already used",
        "expired": "This sign-in link has expired",
        "wrong_provider": "This sign-in link was issued for another provider",
    }

    def __init__(
        self, message: str = "", *, reason: str = "unknown", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message or self.REASONS.get(reason, reason), details=details)
        self.reason = reason


class ProviderNotConfiguredError(NotFoundError):
    """No OAuth app (client id and secret) is configured for the provider."""

    code = "provider_not_configured"


class OAuthCallbackError(InvalidInputError):
    """The callback cannot connect the account; the message tells the person what to do."""

    code = "oauth_callback_failed"


class OAuthFlowNotFoundError(NotFoundError):
    """No pending connect with that flow id (never parked, already verified, or expired)."""

    code = "oauth_flow_not_found"


class OAuthUserMismatchError(InvalidInputError):
    """The user verifying a pending connect is not the user who started it."""

    code = "oauth_user_mismatch"


class LockUnavailableError(BlockpilotError):
    """The lock service cannot be reached; the caller decides whether to go on without it
    (a refresh of a rotating token fails closed, say: ``docs/deployment.md``)."""

    code = "lock_unavailable"


class LeaseLostError(ConflictError):
    """A lock's lease ran out or was taken over while held: its holder must not commit its
    work."""

    code = "lease_lost"


# -- Internal signals ---------------------------------------------------------------------
# Control flow inside one package, caught there: never a response, so no code, HTTP row or
# exit code. One that escaped would be a bug, answered as internal_error.


class InternalSignal(Exception):
    """Base of the signals a package raises and catches itself (not a :class:`BlockpilotError`)."""


class RefError(InternalSignal):
    """An OpenAPI ``$ref`` that cannot be followed (external, or pointing nowhere): the
    operation using it is skipped, or the description is refused with a :class:`SpecError`."""


class SkipOperation(InternalSignal):
    """An OpenAPI operation cannot become a block; the message says why (docs/sources.md)."""


class UpstreamUnauthorizedError(InternalSignal):
    """An MCP source's server refused the token (HTTP 401): the call refreshes the token once,
    then answers :class:`ReauthorizationRequiredError`."""


class UpstreamInsufficientScopeError(InternalSignal):
    """An MCP source's server refused the call for scopes the token lacks (HTTP 403): the
    call answers :class:`InsufficientScopeError`."""

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(" ".join(scopes))
        self.scopes = scopes


__all__ = [
    name
    for name, value in dict(globals()).items()
    if name.endswith("Error") and isinstance(value, type) and issubclass(value, BlockpilotError)
]
