"""The token issuer of our own that the JWT tests sign with (tests/auth/issuers.py): one
server per test module, a fresh issuer (its own keys and JWKS) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.issuers import IssuerServer, TestIssuer, issuer_server


@pytest.fixture(scope="module")
def server() -> Iterator[IssuerServer]:
    with issuer_server() as running:
        yield running


@pytest.fixture
def issuer(server: IssuerServer) -> TestIssuer:
    return server.new_issuer()
