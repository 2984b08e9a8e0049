"""Organization endpoints being built (better-auth 1.7.25); see docs/organizations.md."""

from __future__ import annotations

from ...endpoint import Endpoint
from ._common import Runtime

__all__ = ["endpoints"]


def endpoints(rt: Runtime) -> list[Endpoint]:
    return []
