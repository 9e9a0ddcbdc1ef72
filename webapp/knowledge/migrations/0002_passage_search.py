"""The passages' full-text index: SQLite FTS5 (embedded) or a PostgreSQL GIN index on a tsvector (scaled).

FTS5 is an external-content table over ``knowledge_passage``, kept in step by
triggers, so every way of writing passages (bulk_create, cascade deletes)
updates it without the code knowing.
"""
from __future__ import annotations

from typing import Any

from django.db import migrations

SQLITE = [
    "CREATE VIRTUAL TABLE knowledge_passage_fts USING fts5(heading, text, content='knowledge_passage', "
    "content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER knowledge_passage_ai AFTER INSERT ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "CREATE TRIGGER knowledge_passage_ad AFTER DELETE ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(knowledge_passage_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); END",
    "CREATE TRIGGER knowledge_passage_au AFTER UPDATE ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(knowledge_passage_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); "
    "INSERT INTO knowledge_passage_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS knowledge_passage_au", "DROP TRIGGER IF EXISTS knowledge_passage_ad",
    "DROP TRIGGER IF EXISTS knowledge_passage_ai", "DROP TABLE IF EXISTS knowledge_passage_fts",
]
POSTGRES = ["CREATE INDEX knowledge_passage_tsv ON knowledge_passage USING GIN "
            "(to_tsvector('english', heading || ' ' || text))"]
POSTGRES_DROP = ["DROP INDEX IF EXISTS knowledge_passage_tsv"]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [
        migrations.RunPython(_run({"sqlite": SQLITE, "postgresql": POSTGRES}),
                             _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP})),
    ]
