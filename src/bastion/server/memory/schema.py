"""The memory tables, declared with the identity's schema registry.

Declared once, they are created by the same migrator on SQLite, PostgreSQL and MySQL, either
beside the identity tables (`Identity(plugins=[memory_plugin()])`, or
`CORE_SCHEMA.extend(MEMORY_SCHEMA)`) or on their own (`Memory(url).migrate()`).

Names: the tables are Bastion's, not better-auth's, so they carry a `bastion_` prefix — an
application's own `thread` or `message` table, or a later better-auth plugin's, cannot clash
with them, and they read as a set (as Mastra's `mastra_threads` do). Columns follow
better-auth's camelCase, like every other column Bastion creates.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ...identity.db import NOW, Field, Index, Reference, TableSpec
from ...identity.plugins import Plugin

__all__ = ["MEMORY_SCHEMA", "MESSAGE_TABLE", "THREAD_TABLE", "memory_plugin"]

THREAD_TABLE = "bastion_thread"
MESSAGE_TABLE = "bastion_message"

MEMORY_SCHEMA: Mapping[str, TableSpec] = MappingProxyType(
    {
        THREAD_TABLE: TableSpec(
            fields={
                # Whose thread: the resource id the auth layer maps a user to. Never changes,
                # so an ownership check cannot go stale between two calls.
                "resourceId": Field(type="string", index=True),
                "title": Field(type="string", required=False),
                "metadata": Field(type="json"),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", default=NOW, on_update=NOW),
            }
        ),
        MESSAGE_TABLE: TableSpec(
            fields={
                "threadId": Field(type="string", references=Reference(THREAD_TABLE)),
                # Position in the thread, 1, 2, 3, …: the order of messages, which timestamps
                # (millisecond precision, equal within a batch) cannot give.
                "seq": Field(type="number"),
                "role": Field(type="string"),
                "content": Field(type="string", long=True),
                "toolCalls": Field(type="json", required=False),
                "toolCallId": Field(type="string", required=False),
                "name": Field(type="string", required=False),
                "createdAt": Field(type="date", default=NOW),
            },
            # Serves "messages of a thread, in order" and the foreign key's lookups, and
            # makes a second writer of the same position fail instead of interleaving.
            indexes=[Index("threadId", "seq", unique=True)],
        ),
    }
)


def memory_plugin() -> Plugin:
    """The memory tables as an Identity plugin: `Identity(plugins=[memory_plugin()])` makes
    `identity.migrate()` create them, and `Memory(identity.db)` use them."""
    return Plugin(id="memory", schema=MEMORY_SCHEMA)
