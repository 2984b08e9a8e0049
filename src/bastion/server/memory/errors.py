"""Memory errors, as types callers can catch at any depth.

MemoryStoreError
 ├── ThreadNotFound            no thread with that id
 │    └── ThreadAccessDenied   ... there is one, but another resource owns it
 ├── ThreadExists              create_thread with an id that is taken
 ├── InvalidMemoryInput        an id, text or JSON value the store cannot keep (a 400)
 └── MemoryTablesMissing       a Database whose schema lacks the memory tables

ThreadAccessDenied is a ThreadNotFound so that a route which answers both with 404 (the
recommended answer: it does not confirm that someone else's thread id exists) catches one
class, while logs and tests can still tell them apart.

Database failures (DatabaseUnavailable, …) come through as the database layer raises them.
"""

from __future__ import annotations

__all__ = [
    "InvalidMemoryInput",
    "MemoryStoreError",
    "MemoryTablesMissing",
    "ThreadAccessDenied",
    "ThreadExists",
    "ThreadNotFound",
]


class MemoryStoreError(Exception):
    """Base of every error the memory store raises on purpose."""


class ThreadNotFound(MemoryStoreError, LookupError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} not found")
        self.thread_id = thread_id


class ThreadAccessDenied(ThreadNotFound):
    """The thread exists and belongs to another resource. The other resource's id is kept
    off the message, which may end up in a response or a log."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(thread_id)
        self.args = (f"thread {thread_id!r} belongs to a different resource",)


class ThreadExists(MemoryStoreError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} already exists")
        self.thread_id = thread_id


class InvalidMemoryInput(MemoryStoreError, ValueError):
    pass


class MemoryTablesMissing(MemoryStoreError, ValueError):
    pass
