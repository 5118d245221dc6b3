"""The ``openapi`` kind of source (docs/sources.md).

``kind`` (the source kind) and ``block`` (an operation as a block) are read by other
packages. The modules with a leading underscore are this package's own: loading a description
(``_document``), turning an operation into a block's stored form (``_operations``) and its
schemas into JSON Schema (``_schema``).
"""
