"""Per-user memory: conversation threads and their messages, kept in the database.

memory = Memory("postgresql://…")            # or Memory(identity.db) with memory_plugin()
await memory.migrate()
thread = await memory.create_thread(resource_id)
await memory.append_messages(thread.id, [Message("user", "Hi")])
await memory.history(thread.id)              # [Message(role="user", content="Hi")]
await memory.get_owned_thread(thread.id, other_resource_id)   # raises ThreadAccessDenied
"""

from .errors import (
    InvalidMemoryInput,
    MemoryStoreError,
    MemoryTablesMissing,
    ThreadAccessDenied,
    ThreadExists,
    ThreadNotFound,
)
from .records import StoredMessage, Thread
from .schema import MEMORY_SCHEMA, MESSAGE_TABLE, THREAD_TABLE, memory_plugin
from .store import UNSET, Memory

__all__ = [
    "MEMORY_SCHEMA",
    "MESSAGE_TABLE",
    "THREAD_TABLE",
    "UNSET",
    "InvalidMemoryInput",
    "Memory",
    "MemoryStoreError",
    "MemoryTablesMissing",
    "StoredMessage",
    "Thread",
    "ThreadAccessDenied",
    "ThreadExists",
    "ThreadNotFound",
    "memory_plugin",
]
