"""The ``mcp`` kind of source: a remote MCP server's tools become blocks (docs/sources.md).

``kind`` (the source kind), ``block`` (a tool as a block) and ``oauth`` (discovery and client
registration, which the OAuth flow uses) are read by other packages. The modules with a
leading underscore are this package's own: the session pool (``_sessions``, ``_pools``), the
transports (``_transports``) and the guarded HTTP client the SDK is given (``_guarded``).
"""
