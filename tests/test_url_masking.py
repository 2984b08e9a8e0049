"""A URL shown in an error, a repr or a log hides its whole user-info (issue 12, item 10).

`foo://s3cret@host/db` carries a secret without a colon (a token as the user name, Redis's
`redis://password@host`): it is masked as `***`, as a user:password pair is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from starlette.requests import Request

from bastion._url_masking import mask_userinfo
from bastion.auth import IdentityAuth, JWTAuth, ProviderUnavailable
from bastion.client import AuthClient
from bastion.identity.db import (
    Database,
    DatabaseUnavailable,
    InvalidDatabaseURL,
    mask_url,
    parse_database_url,
)
from bastion.identity.storage import RedisStorage
from bastion.server import OpenAIModel

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("foo://s3cret@host/db", "foo://***@host/db"),
        ("postgresql://u:s3cret@db:5432/app", "postgresql://***@db:5432/app"),
        ("mysql://root@db/app", "mysql://***@db/app"),
        ("redis://:s3cret@cache:6379/0", "redis://***@cache:6379/0"),
        ("postgresql://u:s3/cr@et@db/app", "postgresql://***@db/app"),  # unescaped / and @
        ("https://u:s3cret@auth.example.com/api/auth", "https://***@auth.example.com/api/auth"),
        ("postgresql://db/app", "postgresql://db/app"),
        ("sqlite:///path/with@sign/app.db", "sqlite:///path/with@sign/app.db"),
        ("sqlite://", "sqlite://"),
        ("not a url", "not a url"),
    ],
)
def test_the_whole_userinfo_is_masked(given: str, shown: str) -> None:
    assert mask_userinfo(given) == mask_url(given) == shown


@pytest.mark.parametrize(
    "url",
    [
        "oracle://s3cret@db/app",  # unsupported scheme
        "postgresql://s3cret@db",  # no database
        "weird://s3cret@db app",  # not a URL
    ],
)
def test_refused_database_urls_do_not_show_a_passwordless_secret(url: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as caught:
        parse_database_url(url)
    assert SECRET not in str(caught.value) and "***@" in str(caught.value)


async def test_unreachable_database_does_not_show_a_passwordless_secret() -> None:
    db = Database("postgresql://s3cret@127.0.0.1:1/app")
    assert SECRET not in repr(db)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.ping()
    finally:
        await db.close()
    assert SECRET not in str(caught.value)
    assert "cannot connect to postgresql://***@127.0.0.1:1/app" in str(caught.value)


def test_redis_storage_repr_hides_a_passwordless_secret() -> None:
    pytest.importorskip("redis")
    storage = RedisStorage("redis://s3cret@127.0.0.1:1/0")
    assert repr(storage) == "RedisStorage('redis://***@127.0.0.1:1/0', prefix='')"


@pytest.mark.parametrize(
    "make",
    [
        lambda: JWTAuth(
            jwks_uri="https://s3cret@issuer.example.com/jwks", issuer="x", audience="a"
        ),
        lambda: JWTAuth(jwks_uri="http://s3cret@issuer.example.com/jwks", issuer="x", audience="a"),
        lambda: IdentityAuth(url="ftp://s3cret@auth.example.com/api/auth"),
        lambda: AuthClient("ftp://s3cret@auth.example.com"),
        lambda: AuthClient("https://s3cret@auth.example.com?x=1"),
        lambda: OpenAIModel("m", base_url="ftp://s3cret@llm.example.com", api_key="k"),
    ],
)
def test_configuration_errors_do_not_show_the_userinfo(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError) as caught:  # ConfigurationError is one too
        make()
    assert SECRET not in str(caught.value), caught.value


def test_a_client_repr_hides_the_userinfo() -> None:
    with AuthClient("https://s3cret@auth.example.com/api/auth") as client:
        assert SECRET not in repr(client) and "***@auth.example.com" in repr(client)


async def test_the_remote_session_check_logs_no_userinfo(caplog: pytest.LogCaptureFixture) -> None:
    auth = IdentityAuth(url="http://s3cret@127.0.0.1:1/api/auth")  # nothing listens there
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with caplog.at_level(logging.WARNING), pytest.raises(ProviderUnavailable):
        await auth.authenticate_token("a-token", request)
    assert caplog.records and SECRET not in caplog.text and "***@127.0.0.1:1" in caplog.text
