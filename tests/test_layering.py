"""The import-linter layers contract (pyproject.toml, run by ``lint-imports`` in CI) covers every
module of the three packages, so a new module cannot sit outside the layering unnoticed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layered_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers["layers"] for name in layer.replace("|", ":").split(":")}


def _modules() -> set[str]:
    found = set()
    for package in ("authserver", "clients", "tokens"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or parts[-1] == "__init__" or "." in parts[-1]:
                continue  # migrations are Django's; gunicorn.conf.py is no importable module
            found.add(".".join(parts))
    return found


def test_every_module_is_in_a_layer() -> None:
    layered = _layered_modules()
    unplaced = sorted(
        module for module in _modules()
        if not any(module == name or module.startswith(name + ".") for name in layered)
    )
    assert unplaced == []


def test_every_layer_names_a_module_that_exists() -> None:
    modules = _modules()
    missing = sorted(
        name for name in _layered_modules()
        if not any(module == name or module.startswith(name + ".") for module in modules)
    )
    assert missing == []
