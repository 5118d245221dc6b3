"""``python -m blockpilot.mcp --user USER``: MCP over stdio."""

from __future__ import annotations

import sys

from blockpilot.mcp.stdio import main

if __name__ == "__main__":
    sys.exit(main())
