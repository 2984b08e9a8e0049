"""The secret that signs cookies and tokens when none is configured.

The source holds no usable secret: a constant there would let anyone mint email-verification
and change-email tokens (security S35). Without `secret=`, `BASTION_SECRET` or
`BETTER_AUTH_SECRET`, outside production:

- on a SQLite file, a random secret is made at the first start and kept beside the database
  (`bastion.db` → `bastion.db.secret`, mode 0600), then read at every later start, so
  sessions and mailed links survive restarts and every process on that file agrees;
- on any other database (in-memory SQLite, PostgreSQL, MySQL) there is nowhere both safe and
  shared to keep it: the secret is random and lives as long as the process, and a warning
  says so.

In production a missing secret is refused before this module is asked (`InsecureSecret`).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .db.url import DatabaseURL

__all__ = ["SECRET_FILE_SUFFIX", "InsecureSecret", "generated_secret", "secret_file_for"]

logger = logging.getLogger("bastion.identity")

SECRET_FILE_SUFFIX = ".secret"
_MIN_LENGTH = 32


class InsecureSecret(ValueError):
    """No usable secret where one is required: none configured with BASTION_ENV=production,
    or a kept secret file that holds none."""


def secret_file_for(database: DatabaseURL) -> Path | None:
    """Where the secret of a SQLite file database is kept; None for other databases."""
    if database.dialect != "sqlite" or database.memory or not database.url.database:
        return None
    path = Path(os.path.expanduser(database.url.database))
    return path.with_name(path.name + SECRET_FILE_SUFFIX).absolute()


def generated_secret(database: DatabaseURL) -> str:
    """The secret to use when none is configured: kept beside a SQLite file, else random
    for this process. Says on the console (a `bastion.identity` warning) which it is."""
    path = secret_file_for(database)
    if path is None:
        logger.warning(
            "no BASTION_SECRET: signing with a random secret that lives as long as this "
            "process, and so do its sessions and mailed links; set BASTION_SECRET (make one "
            "with `bastion secret`)"
        )
        return secrets.token_hex(32)
    secret, created = _load_or_create(path)
    if created:
        logger.warning(
            "no BASTION_SECRET: made a random secret and kept it in %s (mode 0600); "
            "keep that file with the database, or set BASTION_SECRET",
            path,
        )
    else:
        logger.warning("no BASTION_SECRET: using the secret kept in %s", path)
    return secret


def _load_or_create(path: Path) -> tuple[str, bool]:
    """The secret in `path`, made first if the file does not exist. Several processes
    starting at once agree: the file appears whole (written aside, then hard-linked into
    place, which fails if another process got there first) and the loser reads the winner's."""
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:  # another process made it first: theirs is the secret
            return _read(path), False
    finally:
        aside.unlink(missing_ok=True)
    return secret, True


def _read(path: Path) -> str:
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < _MIN_LENGTH:
        raise InsecureSecret(
            f"{path} holds no usable secret (at least {_MIN_LENGTH} characters, such as "
            "`bastion secret` prints): delete it to make a new one, or set BASTION_SECRET"
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s can be read by other users: chmod 600 it", path)
    return secret
