"""Each package's public names: complete and importable (as httpx checks)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "bastion",
    "bastion.auth",
    "bastion.identity",
    "bastion.identity.db",
    "bastion.jose",
    "bastion.server",
    "bastion.server.memory",
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
