"""Every module of blockpilot is in a layer of the import-linter contract (docs/architecture.md).

import-linter checks only the modules its layers name: a new top-level module, or a new module
in a package the contract splits by module (``credentials``, ``workspaces``, ``approvals``),
would otherwise be free to import anything.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import blockpilot

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_THE_LAYERS = {
    "_version",  # the version string alone
    "testing",  # fakes for tests and plug-in authors: a contract of its own
}


def _layered() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return {name.strip() for line in layers for name in line.split(":")}


def _covered(module: str, layered: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:n]) in layered for n in range(1, len(parts) + 1))


def test_every_module_is_in_a_layer() -> None:
    layered = _layered()
    modules = [
        info.name.removeprefix("blockpilot.")
        for info in pkgutil.walk_packages(blockpilot.__path__, "blockpilot.")
    ]
    assert len(modules) > 100  # the walk found the package
    missing = sorted(
        m
        for m in modules
        if m.split(".")[0] not in OUTSIDE_THE_LAYERS
        and not _covered(m, layered)
        and not any(other.startswith(m + ".") for other in layered)  # a split package itself
    )
    assert missing == [], "add these to a layer in pyproject.toml [tool.importlinter]"


def test_every_layered_name_is_a_module() -> None:
    modules = {
        info.name.removeprefix("blockpilot.")
        for info in pkgutil.walk_packages(blockpilot.__path__, "blockpilot.")
    }
    assert sorted(_layered() - modules) == []
