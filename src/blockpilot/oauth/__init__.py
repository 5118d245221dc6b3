"""OAuth2: provider configuration and token refresh (the connect flow lives in the service)."""
