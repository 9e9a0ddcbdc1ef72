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

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


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
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each attribute read through the proxy costs
    if db.vendor != "postgresql":
        return db.cursor()
    db.ensure_connection()
    raw = _preparing_cursor_class()(db.connection)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


@dataclass(frozen=True)
class Precompiled:
    """A query's SQL compiled once, run with new values in place of its markers.

    For a query run on every page whose shape never changes (the nav's counters): compiling the ORM's
    queryset took longer than running it. ``precompile`` builds it from a queryset made with marker values
    (ints, or dates, that no real row holds); ``rows`` runs it with the real ones.
    """

    sql: str
    params: tuple[Any, ...]
    marks: dict[Any, str]  # marker value -> the name its real value is given as

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        params = [self._value(param, values) for param in self.params]
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(self.sql, params)
            return list(cursor.fetchall())

    def _value(self, param: Any, values: dict[str, Any]) -> Any:
        if not _hashable(param):
            return param
        if param in self.marks:
            return values[self.marks[param]]
        for mark, name in self.marks.items():  # a date the backend's adaptation made text (SQLite)
            if isinstance(param, str) and not isinstance(mark, str) and param == str(mark):
                return str(values[name])
        return param


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def precompile(queryset: Any, *, wrap: str = "{}", **marks: Any) -> Precompiled:
    """``queryset``'s SQL (inside ``wrap``, e.g. ``"SELECT COUNT(*) FROM ({}) AS q"``) with each of ``marks``
    (name=marker value) found among its parameters; refuses loudly when a marker is missing."""
    sql, params = queryset.query.sql_with_params()
    found = {name for name, mark in marks.items()
             if any(_hashable(p) and (p == mark or (isinstance(p, str) and p == str(mark))) for p in params)}
    if found != set(marks):
        raise RuntimeError(f"cannot precompile {queryset.model.__name__}: no marker for {sorted(set(marks) - found)}")
    return Precompiled(sql=wrap.replace("{}", sql), params=tuple(params), marks={mark: name for name, mark in marks.items()})
