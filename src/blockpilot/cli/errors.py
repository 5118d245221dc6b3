"""The CLI's one error table: stable error ``code`` → process exit code.

Every :class:`~blockpilot.errors.BlockpilotError` subclass and every ``code`` a tool
response can carry is listed here, so the exit status of ``blockpilot tool``/``run`` and of
every other command follows from the same codes the HTTP API and MCP server use.

=====  ======================================================================
exit   meaning
=====  ======================================================================
0      success (for ``tool``: any outcome whose ``type`` is not ``error``)
1      unexpected failure, or an error without a more specific class
2      invalid input or usage: malformed JSON, bad arguments, unknown fields
3      not found or not available: user, block, credential, session, ...
4      authentication: sign-in required, credentials missing or unusable
5      configuration or encryption key problem
6      conflict: the entity already exists
7      the block ran and failed, or timed out
130    interrupted (Ctrl-C)
=====  ======================================================================
"""

from __future__ import annotations

from blockpilot.errors import BlockpilotError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_CONFIGURATION = 5
EXIT_CONFLICT = 6
EXIT_BLOCK_FAILED = 7
EXIT_INTERRUPTED = 130

EXIT_MEANINGS: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure or other error",
    EXIT_USAGE: "invalid input or usage",
    EXIT_NOT_FOUND: "not found or not available",
    EXIT_AUTH: "authentication or credentials required",
    EXIT_CONFIGURATION: "configuration or encryption key error",
    EXIT_CONFLICT: "conflict (already exists)",
    EXIT_BLOCK_FAILED: "the block failed or timed out",
    EXIT_INTERRUPTED: "interrupted",
}

EXIT_CODES: dict[str, int] = {
    # -- the exception tree (blockpilot.errors) ------------------------------------------
    "error": EXIT_FAILURE,
    "configuration_error": EXIT_CONFIGURATION,
    "encryption_key_error": EXIT_CONFIGURATION,
    "storage_unusable": EXIT_CONFIGURATION,
    "invalid_input": EXIT_USAGE,
    "malformed_body": EXIT_USAGE,
    "malformed_json": EXIT_USAGE,
    "invalid_token": EXIT_USAGE,  # a setup, sign-in or review link that cannot be used
    "invalid_setup_link": EXIT_USAGE,
    "oauth_state_invalid": EXIT_USAGE,
    "oauth_callback_failed": EXIT_AUTH,
    "oauth_user_mismatch": EXIT_AUTH,
    "provider_not_configured": EXIT_NOT_FOUND,
    "oauth_flow_not_found": EXIT_NOT_FOUND,
    "lease_lost": EXIT_CONFLICT,
    "lock_unavailable": EXIT_FAILURE,  # the lock service (Redis) is down
    "unsupported_media_type": EXIT_USAGE,
    "request_too_large": EXIT_USAGE,
    "chat_provider_error": EXIT_FAILURE,
    # -- approvals and at-most-once (docs/approvals.md) -----------------------------------
    "missing_review_id": EXIT_USAGE,
    "missing_execution_id": EXIT_USAGE,
    "review_not_found": EXIT_NOT_FOUND,
    "review_required": EXIT_AUTH,
    "review_pending": EXIT_AUTH,
    "review_rejected": EXIT_AUTH,
    "policy_denied": EXIT_AUTH,
    "review_expired": EXIT_CONFLICT,
    "review_used": EXIT_CONFLICT,
    "idempotency_conflict": EXIT_CONFLICT,
    "idempotency_in_progress": EXIT_CONFLICT,
    "idempotency_outcome_unknown": EXIT_FAILURE,
    "auth_required": EXIT_AUTH,
    "admin_required": EXIT_AUTH,
    "policy_locked": EXIT_AUTH,
    "not_found": EXIT_NOT_FOUND,
    "block_not_found": EXIT_NOT_FOUND,
    "user_not_found": EXIT_NOT_FOUND,
    "credential_not_found": EXIT_NOT_FOUND,
    "session_not_found": EXIT_NOT_FOUND,
    "execution_not_found": EXIT_NOT_FOUND,
    "file_not_found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "rate_limited": EXIT_FAILURE,
    "too_many_sessions": EXIT_FAILURE,
    "origin_not_allowed": EXIT_FAILURE,
    "block_load_failed": EXIT_FAILURE,
    "block_failed": EXIT_BLOCK_FAILED,
    "invalid_output": EXIT_BLOCK_FAILED,
    "block_timeout": EXIT_BLOCK_FAILED,
    "credentials_error": EXIT_AUTH,
    "credentials_unavailable": EXIT_AUTH,
    "decryption_failed": EXIT_CONFIGURATION,
    "oauth_refresh_failed": EXIT_AUTH,
    "reauthorization_required": EXIT_AUTH,
    "insufficient_scope": EXIT_AUTH,  # reconnect granting the scope
    # A token endpoint's answer while connecting or refreshing an account (docs/oauth.md).
    "token_grant_refused": EXIT_AUTH,
    "token_endpoint_error": EXIT_AUTH,
    "token_client_refused": EXIT_AUTH,
    "token_request_refused": EXIT_AUTH,
    "token_endpoint_unavailable": EXIT_AUTH,
    "token_response_invalid": EXIT_AUTH,
    "oauth_discovery_failed": EXIT_USAGE,  # sources add mcp --auth oauth
    "workspace_error": EXIT_FAILURE,
    "invalid_path": EXIT_USAGE,
    "file_too_large": EXIT_USAGE,
    "quota_exceeded": EXIT_USAGE,
    "network_error": EXIT_BLOCK_FAILED,
    "destination_blocked": EXIT_BLOCK_FAILED,
    "response_too_large": EXIT_BLOCK_FAILED,
    "upstream_timeout": EXIT_BLOCK_FAILED,
    # -- codes only tool responses carry (tools/, runner) ---------------------------------
    "missing_block_id": EXIT_USAGE,
    "missing_query": EXIT_USAGE,
    "invalid_input_data": EXIT_USAGE,
    "invalid_arguments": EXIT_USAGE,
    "unknown_fields": EXIT_USAGE,
    "tool_not_found": EXIT_NOT_FOUND,
    "block_disabled": EXIT_NOT_FOUND,
    "block_excluded": EXIT_NOT_FOUND,
    "need_login": EXIT_AUTH,
    "invalid_api_key": EXIT_AUTH,
    "setup_required": EXIT_AUTH,
    "timeout": EXIT_BLOCK_FAILED,
    "internal_error": EXIT_FAILURE,
    # -- the CLI's own ---------------------------------------------------------------------
    "usage": EXIT_USAGE,
    "interrupted": EXIT_INTERRUPTED,
}


def exit_code_for(code: str | None) -> int:
    """Exit code of a stable error *code*; unknown codes are ``1``."""
    return EXIT_CODES.get(code or "error", EXIT_FAILURE)


def exit_code_for_exception(exc: BlockpilotError) -> int:
    """Exit code of an exception: its own code, else the nearest ancestor's that is listed."""
    for cls in type(exc).__mro__:
        code = getattr(cls, "code", None)
        if isinstance(code, str) and code in EXIT_CODES:
            return EXIT_CODES[code]
    return EXIT_FAILURE
