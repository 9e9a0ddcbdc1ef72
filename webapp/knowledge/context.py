"""Project knowledge in a chat prompt: the passages that answer a question, and the context template.

The team edits the template as a prompt template of the chat kind whose
command is ``knowledge`` (``/knowledge``): its published version's body, with
``{context}`` and ``{question}``, replaces the default below. The passages go
in numbered ``[1]``, ``[2]``..., so the reply can cite them.
"""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from webapp.knowledge.search import knowledge_search

TEMPLATE_COMMAND = "knowledge"
DEFAULT_CONTEXT_TEMPLATE = (
    "Answer the question using only the numbered sources below, and cite each source you use as [1], [2]... "
    "If the sources do not answer it, say that the project's documents do not cover it, and cite nothing.\n\n"
    "Sources:\n{context}\n\nQuestion: {question}"
)
NO_SOURCES = "(none: no passage of the project's documents matches the question)"


def knowledge_passages(*, project_id: int, question: str, document_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Snapshots of the ``KNOWLEDGE_CHAT_PASSAGES`` passages that best match ``question``, numbered from 1.

    A snapshot (not a foreign key) is what a reply stores: it still says what the reply read after
    the document is replaced or deleted.
    """
    hits = knowledge_search(project_id=project_id, query=question, limit=int(settings.KNOWLEDGE_CHAT_PASSAGES),
                            document_ids=document_ids)
    return [
        {"n": number, "passage_id": hit.passage.pk, "document_id": hit.passage.document_id,
         "title": hit.document.title, "page": hit.passage.page, "heading": hit.passage.heading,
         "text": hit.passage.text}
        for number, hit in enumerate(hits, start=1)
    ]


_MENTION = re.compile(r"(?<![\w#])#([\w][\w.-]*)")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def knowledge_mentions(*, project_id: int, text: str) -> list[int]:
    """The project's indexed documents named in ``text`` with ``#``: ``#handbook`` names the document whose
    file name (without its extension) or title, lower-cased with dashes for spaces, is ``handbook``."""
    from webapp.knowledge.models import Document

    wanted = {_slug(m.group(1)).removesuffix("-") for m in _MENTION.finditer(text)}
    if not wanted:
        return []
    found = []
    for pk, title, filename in Document.objects.filter(project_id=project_id, status="done").values_list(
            "pk", "title", "filename"):
        if _slug(title) in wanted or _slug(filename.rsplit(".", 1)[0]) in wanted:
            found.append(pk)
    return found


def mention_choices(*, project_id: int) -> list[tuple[str, str]]:
    """The composer's ``#`` picker: (name to type after ``#``, title) of each indexed document, by title;
    the names are the ones ``knowledge_mentions`` reads."""
    from webapp.knowledge.models import Document

    titles = Document.objects.filter(project_id=project_id, status="done").order_by("title").values_list(
        "title", flat=True)
    return [(_slug(title), title) for title in dict.fromkeys(titles) if _slug(title)]


def context_template(*, project_id: int) -> str:
    """The project's published ``/knowledge`` chat template, if it has one with both slots; else the default."""
    from webapp.prompt_templates.models import PromptTemplate

    template = (PromptTemplate.objects.filter(project_id=project_id, command=TEMPLATE_COMMAND, kind="chat")
                .select_related("published_version").first())
    body = template.published_version.body if template is not None and template.published_version else ""
    return body if "{context}" in body and "{question}" in body else DEFAULT_CONTEXT_TEMPLATE


def context_render(*, template: str, passages: list[dict[str, Any]], question: str) -> str:
    """``template`` with the numbered passages and the question in its slots (plain replacement: braces in
    a passage or the question are text, never slots)."""
    blocks = []
    for passage in passages:
        where = ", ".join(part for part in (passage["title"], f"page {passage['page']}" if passage["page"] else "",
                                            passage["heading"]) if part)
        blocks.append(f"[{passage['n']}] ({where})\n{passage['text']}")
    context = "\n\n".join(blocks) or NO_SOURCES
    head, _, tail = template.partition("{question}")
    return head.replace("{context}", context) + question + tail.replace("{context}", context)
