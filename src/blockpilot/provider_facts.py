"""What we know about each provider, in one table: names, API bases, OAuth endpoints, scopes.

The blocks, the live credential checks, the credential matching and the OAuth flow all read
their provider facts from :data:`PROVIDERS`; operators override the URLs per provider with
``BLOCKPILOT_PROVIDER_<NAME>_…`` settings (``docs/configuration.md``). A provider that is not
listed here still works: it gets a title-cased name and no defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """The static facts of one provider.

    Attributes:
        name: The provider's id in credentials and settings (``github``).
        display_name: How people write it (``GitHub``).
        api_base: The API's default base URL, for blocks and live checks.
        api_headers: Headers every API request sends (content type, API version).
        authorize_url: The OAuth2 authorization endpoint.
        token_url: The OAuth2 token endpoint.
        login_scopes: Scopes every login asks for besides those a block needs: enough to
            learn the account's name for the credential's title.
        authorize_params: Extra parameters of the authorization request.
        userinfo_url: Where the account's name is cheap to learn.
        scope_separator: What separates scopes in the authorization request.
        rotates_refresh_tokens: A refresh token is spent on first use (reuse may revoke the
            grant), so it is refreshed only under the shared lock. Assumed unless known;
            ``BLOCKPILOT_PROVIDER_<NAME>_ROTATES_REFRESH_TOKENS=false`` says otherwise.
    """

    name: str
    display_name: str
    api_base: str = ""
    api_headers: Mapping[str, str] = field(default_factory=dict)
    authorize_url: str = ""
    token_url: str = ""
    login_scopes: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    userinfo_url: str = ""
    scope_separator: str = " "
    rotates_refresh_tokens: bool = True


_FACTS = (
    ProviderFacts("openai", "OpenAI", api_base="https://api.openai.com/v1"),
    ProviderFacts(
        "anthropic",
        "Anthropic",
        api_base="https://api.anthropic.com",
        api_headers={"anthropic-version": "2023-06-01"},
    ),
    ProviderFacts("ollama", "Ollama", api_base="http://localhost:11434/v1"),
    ProviderFacts(
        "github",
        "GitHub",
        api_base="https://api.github.com",
        api_headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
        login_scopes=("read:user",),
        userinfo_url="https://api.github.com/user",
    ),
    ProviderFacts(
        "google",
        "Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        login_scopes=("openid", "email"),
        # Google returns a refresh token only for offline access, and only on consent.
        authorize_params={
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        },
        userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
        rotates_refresh_tokens=False,
    ),
    ProviderFacts(
        "notion",
        "Notion",
        api_base="https://api.notion.com",
        api_headers={"Notion-Version": "2022-06-28"},
        authorize_url="https://api.notion.com/v1/oauth/authorize",
        token_url="https://api.notion.com/v1/oauth/token",
        authorize_params={"owner": "user"},  # Notion's authorize URL requires it
    ),
    ProviderFacts(
        "linear",
        "Linear",
        api_base="https://api.linear.app",
        authorize_url="https://linear.app/oauth/authorize",
        token_url="https://api.linear.app/oauth/token",
    ),
    ProviderFacts("jira", "Jira"),
    ProviderFacts(
        "hubspot",
        "HubSpot",
        api_base="https://api.hubapi.com",
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",
        login_scopes=("oauth",),  # HubSpot refuses an app's authorization without it
        rotates_refresh_tokens=False,
    ),
    ProviderFacts(
        "slack",
        "Slack",
        api_base="https://slack.com/api",
        authorize_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",
        scope_separator=",",
    ),
    ProviderFacts("discord", "Discord", api_base="https://discord.com/api/v10"),
    ProviderFacts("telegram", "Telegram", api_base="https://api.telegram.org"),
    ProviderFacts(
        "todoist",
        "Todoist",
        api_base="https://api.todoist.com/rest/v2",
        authorize_url="https://todoist.com/oauth/authorize",
        token_url="https://todoist.com/oauth/access_token",
        scope_separator=",",
    ),
    ProviderFacts(
        "airtable",
        "Airtable",
        api_base="https://api.airtable.com/v0",
        authorize_url="https://airtable.com/oauth2/v1/authorize",
        token_url="https://airtable.com/oauth2/v1/token",
    ),
    ProviderFacts("exa", "Exa", api_base="https://api.exa.ai"),
    ProviderFacts("jina", "Jina", api_base="https://s.jina.ai"),
    ProviderFacts("openweathermap", "OpenWeatherMap", api_base="https://api.openweathermap.org"),
    ProviderFacts("database", "Database"),
    ProviderFacts("smtp", "SMTP"),
    ProviderFacts("http", "HTTP"),
)

PROVIDERS: Mapping[str, ProviderFacts] = MappingProxyType({f.name: f for f in _FACTS})
"""Every provider we know, by name."""


def provider_facts(name: str) -> ProviderFacts:
    """The facts of *name*; for a provider we do not know, its name and nothing else."""
    known = PROVIDERS.get(name)
    return known or ProviderFacts(name, name.replace("_", " ").title())


__all__ = [
    "PROVIDERS",
    "ProviderFacts",
    "provider_facts",
]
