"""The ``openapi`` kind of source (docs/sources.md)."""
