from __future__ import annotations

from typing import Any

from webapp.core import bounds
from webapp.prompts.models import PromptKind, PromptRecord, PromptSource


def prompt_record_create(
    *, project: Any, author: Any, kind: str, text: str, params: dict[str, Any], model_name: str = "",
    source: str = PromptSource.WEB, source_label: str = "",
) -> PromptRecord:
    """Record a prompt in the project's history.

    Call it inside the transaction that creates the message or job, so a
    prompt is recorded exactly when its work is. ``params`` must be JSON-safe.
    ``source`` says where it came from (the browser or the API); for the API,
    ``source_label`` names the key.
    """
    if kind not in PromptKind.values:
        raise ValueError(f"unknown prompt kind {kind!r}")
    if source not in PromptSource.values:
        raise ValueError(f"unknown prompt source {source!r}")
    bounds.check_lengths(text=(text, bounds.PROMPT_TEXT), model_name=(model_name, 200))
    return PromptRecord.objects.create(
        project=project, author=author, kind=kind, text=text, params=params, model_name=model_name,
        source=source, source_label=source_label[:200],
    )


def prompt_record_sources(*, record_id: int, sources: list[dict[str, Any]]) -> None:
    """Note on a prompt the knowledge passages its reply read (number, title, page, heading, ids), so the
    prompt history shows them; an empty list says knowledge was on and nothing matched."""
    record = PromptRecord.objects.select_for_update().get(pk=record_id)
    record.params = {**record.params, "knowledge": sources}
    record.save(update_fields=["params"])
