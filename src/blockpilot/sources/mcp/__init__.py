"""The ``mcp`` kind of source: a remote MCP server's tools become blocks (docs/sources.md)."""
