"""blockpilot's tools as native tools of agent frameworks (``docs/frameworks.md``).

Each adapter is one small module over :meth:`blockpilot.pilot.Pilot.call_tool`, imported only
when used, so the frameworks stay optional extras:

- :mod:`blockpilot.integrations.langchain` (``blockpilot[langchain]``)
- :mod:`blockpilot.integrations.pydantic_ai` (``blockpilot[pydantic-ai]``)
- :mod:`blockpilot.integrations.openai_agents` (``blockpilot[openai-agents]``)
"""

from blockpilot.integrations.binding import UserToolBinding

__all__ = ["UserToolBinding"]
