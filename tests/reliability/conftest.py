"""Fixtures of the reliability suite: a served blockpilot (a real ``blockpilot serve``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test that takes seconds (subprocesses, kills)")
