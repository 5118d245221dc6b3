"""OAuth2: provider configuration and token refresh (providers), and the connect flow:
single-use PKCE-bound states (state) and the authorization-code exchange (flow)."""
