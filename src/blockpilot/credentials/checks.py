"""Live credential checks: one cheap, read-only request to the provider, where it has one.

============================  ==================================================
provider                      request
============================  ==================================================
``github``                    ``GET {api base}/user`` with the token
``anthropic``                 ``GET {base}/v1/models`` with ``x-api-key`` and
                              ``anthropic-version``
``openai`` and the other      ``GET {base}/models`` with ``Authorization: Bearer``
OpenAI-compatible LLM
providers of the LLM block
============================  ==================================================

Base URLs are the operator's ``BLOCKPILOT_PROVIDER_<NAME>_BASE_URL`` or the defaults the
built-in blocks use. Requests go through the guarded HTTP client like every block request.
Results never contain the credential's secrets: every message is scrubbed of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from blockpilot.credentials.manager import IntegrationCredentialsManager
from blockpilot.credentials.models import APIKeyCredentials, Credentials, OAuth2Credentials
from blockpilot.errors import CredentialNotFoundError, NetworkError, OAuthRefreshError
from blockpilot.net.client import GuardedHTTPClient, GuardedResponse
from blockpilot.net.policy import TrustedDestinations
from blockpilot.provider_facts import PROVIDERS, provider_facts
from blockpilot.redaction import Redactor

CHECK_TIMEOUT_SECONDS = 10.0
CHECK_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The outcome of a live check.

    Attributes:
        ok: The provider accepted the credential (True), refused it or could not be asked
            (False), or there is no live check for it (None).
        status: The provider's HTTP status, if a response came back.
        message: What happened, for a person; never holds a secret.
    """

    ok: bool | None
    status: int | None
    message: str


@dataclass(frozen=True, slots=True)
class _Probe:
    """The one request a check sends."""

    url: str
    headers: dict[str, str]
    sensitive_headers: dict[str, str]


ProbeFor = Callable[[Credentials, str], _Probe | None]


def _github(creds: Credentials, base: str) -> _Probe | None:
    if not isinstance(creds, APIKeyCredentials | OAuth2Credentials):
        return None
    return _Probe(
        f"{base}/user",
        dict(PROVIDERS["github"].api_headers),
        {"Authorization": creds.auth_header()},
    )


def _openai_compatible(creds: Credentials, base: str) -> _Probe | None:
    if not isinstance(creds, APIKeyCredentials):
        return None
    return _Probe(f"{base}/models", {}, {"Authorization": creds.auth_header()})


def _anthropic(creds: Credentials, base: str) -> _Probe | None:
    if not isinstance(creds, APIKeyCredentials):
        return None
    return _Probe(
        f"{base}/v1/models",
        dict(PROVIDERS["anthropic"].api_headers),
        {"x-api-key": creds.api_key.get_secret_value()},
    )


# provider -> (default API base, how to probe it). The LLM block speaks the OpenAI API to
# every provider but Anthropic, so each of them gets the OpenAI-compatible check.
_CHECKS: dict[str, tuple[str, ProbeFor]] = {
    "github": (PROVIDERS["github"].api_base, _github),
    **{
        provider: (
            PROVIDERS[provider].api_base,
            _anthropic if provider == "anthropic" else _openai_compatible,
        )
        for provider in ("openai", "anthropic", "ollama")
    },
}

CHECKED_PROVIDERS: frozenset[str] = frozenset(_CHECKS)
"""Providers that have a live check (for some credential types)."""


def _provider_detail(response: GuardedResponse) -> str:
    """The provider's own error message, if its body has one (GitHub, OpenAI, Anthropic)."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    detail = error.get("message") if isinstance(error, dict) else payload.get("message")
    return str(detail)[:_MAX_DETAIL_CHARS] if detail else ""


async def check_credentials(
    creds: Credentials,
    http: GuardedHTTPClient,
    provider_urls: Mapping[str, str],
) -> CredentialCheck:
    """Ask the provider whether *creds* work, with one cheap read-only request.

    Args:
        creds: The decrypted credential (refreshed first if it is an expiring OAuth2 token).
        http: The guarded client the request goes through.
        provider_urls: Operator overrides of providers' API bases, by provider name.

    Returns:
        The outcome; network failures are an outcome (``ok`` False, ``status`` None), not
        an exception.
    """
    entry = _CHECKS.get(creds.provider)
    if entry is None:
        return CredentialCheck(None, None, f"No live check for provider {creds.provider}")
    default_base, probe_for = entry
    probe = probe_for(creds, (provider_urls.get(creds.provider) or default_base).rstrip("/"))
    if probe is None:
        return CredentialCheck(
            None,
            None,
            f"No live check for {creds.type} credentials of provider {creds.provider}",
        )
    name = provider_facts(creds.provider).display_name
    redactor = Redactor(creds.secret_values())
    try:
        response = await http.request(
            "GET",
            probe.url,
            headers=probe.headers,
            sensitive_headers=probe.sensitive_headers,
            timeout=CHECK_TIMEOUT_SECONDS,
            max_bytes=CHECK_MAX_RESPONSE_BYTES,
        )
    except NetworkError as exc:
        return CredentialCheck(
            False, None, redactor.scrub_text(f"Could not reach {name}: {exc.message}")
        )
    status = response.status_code
    if response.is_success:
        return CredentialCheck(True, status, f"{name} accepted the credential")
    detail = _provider_detail(response)
    if status in (401, 403):
        message = f"{name} rejected the credential (HTTP {status})"
    else:
        message = f"{name} answered HTTP {status}; the credential could not be confirmed"
    if detail:
        message += f": {detail}"
    return CredentialCheck(False, status, redactor.scrub_text(message))


class CredentialChecker:
    """Live checks of a user's own stored credentials.

    Args:
        credentials: Reads credentials (refreshing expiring OAuth2 tokens).
        http: The guarded HTTP client.
        provider_urls: Operator overrides of providers' API bases.
    """

    def __init__(
        self,
        credentials: IntegrationCredentialsManager,
        http: GuardedHTTPClient,
        provider_urls: Mapping[str, str],
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._provider_urls = provider_urls
        self._trusted = TrustedDestinations(provider_urls)

    def _client_for(self, provider: str) -> GuardedHTTPClient:
        # A provider's operator-set base URL is exempt for its own credentials only.
        return self._http.with_exemptions(self._trusted.for_scopes({provider}))

    async def check(self, user_id: str, cred_id: str) -> CredentialCheck:
        """Check credential *cred_id* of *user_id*.

        Raises:
            CredentialNotFoundError: The user has no credential with that id (another
                user's id included; platform keys are not the user's).
        """
        stored = await self._credentials.store.get(user_id, cred_id)
        if stored is None:
            raise CredentialNotFoundError(f"Credential {cred_id[:80]!r} not found")
        if stored.provider not in CHECKED_PROVIDERS:
            return await check_credentials(
                stored, self._client_for(stored.provider), self._provider_urls
            )
        try:
            creds = await self._credentials.get(user_id, cred_id)  # refreshes OAuth2 if due
        except OAuthRefreshError as exc:
            return CredentialCheck(
                False, None, Redactor(stored.secret_values()).scrub_text(exc.message)
            )
        if creds is None:  # deleted meanwhile
            raise CredentialNotFoundError(f"Credential {cred_id[:80]!r} not found")
        return await check_credentials(creds, self._client_for(creds.provider), self._provider_urls)
