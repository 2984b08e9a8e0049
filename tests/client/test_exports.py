"""`bastion.client.__all__`: complete and importable (as tests/test_exported_members.py does
for the other packages)."""

from __future__ import annotations

import importlib

import bastion.client


def test_all_is_importable() -> None:
    for name in bastion.client.__all__:
        assert hasattr(bastion.client, name), name


def test_the_public_names_of_its_modules_are_exported() -> None:
    for sub in ("agents", "auth", "errors", "events", "sse"):
        module = importlib.import_module(f"bastion.client.{sub}")
        missing = [n for n in module.__all__ if n not in bastion.client.__all__]
        assert not missing, f"{sub}: {missing}"
