"""Each package's public names: complete and importable (as httpx checks)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PACKAGES = [
    "bastion",
    "bastion.auth",
    "bastion.identity",
    "bastion.identity.db",
    "bastion.identity.social",
    "bastion.jose",
    "bastion.server",
    "bastion.server.memory",
    "bastion.web",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_importable(name: str) -> None:
    # Sorting is ruff's job (RUF022); here, that every exported name exists.
    module = importlib.import_module(name)
    for member in module.__all__:
        assert hasattr(module, member), member


def test_db_exports_every_public_name_of_its_modules() -> None:
    package = importlib.import_module("bastion.identity.db")
    for sub in ("adapter", "errors", "migrate", "schema", "url", "where"):
        module = importlib.import_module(f"bastion.identity.db.{sub}")
        missing = [n for n in module.__all__ if n not in package.__all__]
        assert not missing, f"{sub}: {missing}"


PUBLIC_MODULES = {
    *PACKAGES,
    "bastion.client",
    "bastion.serving",
    "bastion.errors",
    # the organization plugin's access-control defaults (docs/organizations.md)
    "bastion.identity.plugins.organization",
}
# `from bastion.x import a, b` on one line, or `from bastion.x import (` … `)` over several.
_IMPORT = re.compile(
    r"^[ \t]*from (bastion[\w.]*) import (?:\(([\w\s,]+)\)|([\w ,]+)$)", re.MULTILINE
)


def _documented_imports() -> list[tuple[str, str, str]]:
    root = Path(__file__).resolve().parent.parent
    found = []
    for path in [
        root / "README.md",
        *(root / "docs").glob("*.md"),
        *(root / "examples").glob("*.py"),
    ]:
        for module, wrapped, inline in _IMPORT.findall(path.read_text()):
            for name in (n.strip() for n in (wrapped or inline).split(",")):
                if name:
                    found.append((path.name, module, name))
    return found


def test_docs_and_examples_import_only_public_names() -> None:
    """What a reader copies imports from a public package, names in its `__all__`."""
    imports = _documented_imports()
    assert len(imports) > 50  # the parse found the examples
    wrong = [
        f"{where}: from {module} import {name}"
        for where, module, name in imports
        if module not in PUBLIC_MODULES or name not in importlib.import_module(module).__all__
    ]
    assert not wrong, wrong
