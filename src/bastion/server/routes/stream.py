"""`POST /api/agents/{agentId}/stream`: a run as server-sent events (docs/http-api.md).

The events are the agent's (`text-delta`, `tool-call`, `tool-result`, then `finish`), each
encoded once and sent as soon as the agent yields it. The thread (if any) is written after
the agent's last event and before `finish`, so a client that sees `finish` can read the
thread back at once. A model failure is a 502 before the first event and an `error` event
after it (sse.py decides which).

There is no `GET` variant for `EventSource`: a run costs money and writes memory, and a GET
must not change state (security item S19): a cross-site page could start one with a mere
`<img>` or `EventSource` carrying the user's cookie, and the messages would land in access
logs. Browsers read the stream with `fetch` (`credentials: "include"` sends the session
cookie) and a small SSE reader.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ...auth.context import RequestContext
from ..agents import Agent, FinishEvent
from ..models import ModelError
from .common import HTTPError
from .runs import Run
from .sse import Encoder, encode_event

__all__ = ["run_events"]

logger = logging.getLogger("bastion.server")


async def run_events(
    agent: Agent, run: Run, context: RequestContext, encode: Encoder = encode_event
) -> AsyncIterator[bytes]:
    """The events of one run, encoded by `encode`; ModelError becomes HTTPError 502."""
    events = agent.stream(run.transcript, context=context, max_steps=run.max_steps)
    try:
        async for event in events:
            if isinstance(event, FinishEvent):
                await run.save(event.messages)
                yield encode(event.event, {**event.data(), **run.thread_json()})
            else:
                yield encode(event.event, event.data())
    except ModelError as exc:
        logger.warning("model of agent %s failed: %s", agent.id, exc)
        raise HTTPError(502, str(exc) or "The model failed") from None
    finally:
        await events.aclose()
