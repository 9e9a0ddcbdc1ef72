"""Raw SQL on hot paths: a cursor whose statements PostgreSQL keeps prepared.

Django's PostgreSQL cursors bind parameters on the client, so the server parses and plans every
statement anew. For the few statements run at every job's end (the usage write and its read of
the job's row) planning cost more than running them: ``prepared_cursor`` binds on the server and
asks psycopg to prepare the statement on its first run on a connection, so later runs skip parse
and plan (measured on the 100k-job bench: the usage write's statement 1.40 -> 0.79 ms).

Prepared statements live on the server connection. Behind PgBouncer in transaction mode they need
its ``max_prepared_statements`` (1.21+); ``ATELIER_DB_PREPARE=0`` turns them off (the settings then give
psycopg no ``prepare_threshold``, and the statements run unprepared, bound on the server). Only cursors
made here prepare: Django's own bind on the client and never do. Elsewhere (SQLite) this is Django's own
cursor.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection


@cache
def _preparing_cursor_class() -> type[Any]:
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc,valid-type]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs.setdefault("prepare", True)
            return super().execute(query, params, **kwargs)

    return PreparingCursor


def prepared_cursor() -> Any:
    """A cursor (Django's wrapper: the debug log and ``CaptureQueriesContext`` see it) whose ``execute``
    prepares its statement on PostgreSQL; Django's plain cursor elsewhere. Use ``%s`` placeholders and a
    list of parameters, as with any Django cursor; a statement's SQL should be built once and reused.
    psycopg keeps one prepared statement per statement and types of its parameters (an int goes as the
    smallest type that holds it), the 100 last used on each connection."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    raw = _preparing_cursor_class()(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
