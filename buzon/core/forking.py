"""What a process may hold when it forks: no other thread, and no open database connection.

fork() copies the whole memory of the parent but only the thread that called it. Any lock another
thread held at that instant is copied locked, with no thread left in the child to release it:
SQLite's mutex (the child hangs in its first connect), Python's lock of a module being imported (the
child hangs on its first import of that module, or finds it half-initialised), a connection pool's
lock. And an open database connection copied into the child is one socket spoken on by two
processes. Buzón's forking parents (gunicorn's master) therefore call `before_fork()`, which closes
the connections and refuses to fork beside another thread: a deterministic failure at start instead
of a start that hangs now and then. Threads belong in the children, started after the fork.
"""

from __future__ import annotations

import threading

from django import db


class ThreadsAtFork(RuntimeError):
    pass


def before_fork(parent: str) -> None:
    """In `parent`, just before fork(): close its database connections; raise if another thread runs."""
    db.connections.close_all()
    others = sorted(t.name for t in threading.enumerate() if t is not threading.current_thread())
    if others:
        raise ThreadsAtFork(
            f"{parent} would fork with other threads running ({', '.join(others)}): a lock one of them "
            f"holds would stay locked for ever in the child. Start such threads after the fork, in the child.")
