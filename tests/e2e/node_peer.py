"""Drive the TypeScript better-auth peer in tests/e2e/node (see its README).

Tests that need it skip, saying why, when Node or its packages are missing — unless
$BASTION_REQUIRE_NODE is set (CI sets it), where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

NODE_DIR = Path(__file__).resolve().parent / "node"
REQUIRE_NODE = os.environ.get("BASTION_REQUIRE_NODE", "") not in ("", "0")


def _missing(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"{reason} ($BASTION_REQUIRE_NODE is set)", pytrace=False)
    pytest.skip(reason)


def better_auth(command: str, database_url: str, **env: str) -> dict[str, Any]:
    """Run `node ba-peer.mjs <command>` against our database URL; its one line of JSON."""
    node = shutil.which("node")
    if node is None:
        _missing("needs Node.js (node) for the better-auth peer")
    if not (NODE_DIR / "node_modules" / "better-auth").is_dir():
        _missing(f"needs the better-auth peer installed: npm ci --prefix {NODE_DIR}")
    url = make_url(database_url)
    kind = url.get_backend_name()
    if kind == "sqlite":
        target = url.database or ""
    else:
        target = url.set(drivername="postgres" if kind == "postgresql" else "mysql")
        target = target.render_as_string(hide_password=False)
        kind = "postgres" if kind == "postgresql" else "mysql"
    result = subprocess.run(
        [str(node), "ba-peer.mjs", command],
        cwd=NODE_DIR,
        env={**os.environ, "DB_KIND": kind, "DB_URL": target, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"better-auth peer {command} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
