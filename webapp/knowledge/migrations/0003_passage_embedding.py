"""Passages keep their dense vector and the model that made it.

On SQLite, adding a NOT NULL column remakes ``knowledge_passage``, and that drops the triggers that
keep the FTS5 index in step (0002): they are made again here.
"""
from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations, models

_search = importlib.import_module("webapp.knowledge.migrations.0002_passage_search")
TRIGGERS = [statement for statement in _search.SQLITE if statement.startswith("CREATE TRIGGER")]
DROP_TRIGGERS = [statement for statement in _search.SQLITE_DROP if statement.startswith("DROP TRIGGER")]


def _triggers_again(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for statement in DROP_TRIGGERS + TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_passage_search")]

    operations = [
        migrations.AddField(
            model_name="passage",
            name="embedding",
            field=models.BinaryField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="passage",
            name="embedding_model",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(_triggers_again, _triggers_again),
    ]
