"""The Cookie header read as better-call 1.x reads it (its own `parseCookies`, in Node).

Every session read starts here, so the parser is written for speed; this test keeps it
better-call's: thousands of headers made of the characters that matter (separators, quotes,
JavaScript whitespace, escapes, repeated names) parse to the same names and values.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from bastion.identity.cookies import decode_cookie_value, parse_cookie_header
from tests.e2e.node_peer import NODE_DIR, node_executable

pytestmark = pytest.mark.e2e

# better-call's parser is not in its package's exports: the script imports the file itself.
_SCRIPT = """\
import { readFileSync } from "node:fs";
import { parseCookies } from %s;
const headers = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(headers.map((header) => [...parseCookies(header)])));
"""

# What changes how a header splits, beside ordinary name and value characters.
_PIECES = [
    "a", "b", "tok", "=", "=", ";", ";", " ", "  ", "\t", "\n", "\u00a0", "\ufeff", "\u2028",
    '"', '""', "%2B", "%3D", "%", "%zz", "%C3%A9", "caf\u00e9", ".", "a=1", "; ", "==",
]  # fmt: skip


def _headers(count: int) -> list[str]:
    rng = random.Random(20261207)
    made = ["", ";", "=", "a", " a = 1 ", 'x="q"', 'x="', "a=1; a=2", "=v; k=w"]
    while len(made) < count:
        made.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))))
    return made


def test_the_cookie_header_parses_as_better_call_parses_it(tmp_path: Path) -> None:
    node = node_executable()  # skips, or fails in CI, without Node and the peer's packages
    module = NODE_DIR / "node_modules" / "better-call" / "dist" / "cookies.mjs"
    script = tmp_path / "parse.mjs"
    script.write_text(_SCRIPT % json.dumps(module.as_uri()))
    headers = _headers(5000)
    ran = subprocess.run(
        [node, str(script)], input=json.dumps(headers), capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    theirs = json.loads(ran.stdout)
    for header, pairs in zip(headers, theirs, strict=True):
        # better-call decodes each value as it parses (tryDecode); Bastion parses the raw
        # values and decodes where a value is read.
        ours = [
            [name, decode_cookie_value(raw)] for name, raw in parse_cookie_header(header).items()
        ]
        assert ours == pairs, header
