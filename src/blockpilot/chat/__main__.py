"""``python -m blockpilot.chat --user USER [--message TEXT]``."""

from __future__ import annotations

import argparse
import sys

from blockpilot.chat.loop import main
from blockpilot.errors import BlockpilotError


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m blockpilot.chat", description="Chat with blockpilot's tools."
    )
    parser.add_argument("--user", required=True, help="the user to act as (id or name)")
    parser.add_argument(
        "--base-url", help="OpenAI-compatible base URL (default: $BLOCKPILOT_CHAT_BASE_URL)"
    )
    parser.add_argument("--model", help="model name (default: $BLOCKPILOT_CHAT_MODEL)")
    parser.add_argument("--message", "-m", help="send this one message and exit")
    parser.add_argument("--strict", action="store_true", help="use OpenAI strict function calling")
    args = parser.parse_args(argv)
    try:
        main(
            args.user,
            base_url=args.base_url,
            model=args.model,
            message=args.message,
            tool_format="openai-strict" if args.strict else "openai",
        )
    except BlockpilotError as exc:
        sys.stderr.write(f"Error: {exc.message}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
