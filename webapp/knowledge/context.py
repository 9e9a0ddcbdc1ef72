"""Project knowledge in a chat prompt: the passages that answer a question, and the context template.

The team edits the template as a prompt template of the chat kind whose
command is ``knowledge`` (``/knowledge``): its published version's body, with
``{context}`` and ``{question}``, replaces the default below. The passages go
in numbered ``[1]``, ``[2]``..., so the reply can cite them.

The model reads an excerpt of each passage (``excerpts``): the sentences that
share the most words with the question, within ``KNOWLEDGE_CONTEXT_TOKENS`` in
all. Every token of context is prefilled before the reply's first token, and on
a CPU that is most of the time knowledge adds (bench/knowledge.py ``--only chat``).
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any

from django.conf import settings

from webapp.knowledge.chunking import count_tokens
from webapp.knowledge.search import knowledge_search, query_terms, terms_in

TEMPLATE_COMMAND = "knowledge"
DEFAULT_CONTEXT_TEMPLATE = (
    "Answer the question using only the numbered sources below, and cite each source you use as [1], [2]... "
    "If the sources do not answer it, say that the project's documents do not cover it, and cite nothing.\n\n"
    "Sources:\n{context}\n\nQuestion: {question}"
)
NO_SOURCES = "(none: no passage of the project's documents matches the question)"


def knowledge_passages(*, project_id: int, question: str, document_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Snapshots of the ``KNOWLEDGE_CHAT_PASSAGES`` passages that best match ``question``, numbered from 1,
    each with the ``excerpt`` of it that the prompt holds (the whole ``text`` when
    ``KNOWLEDGE_CONTEXT_TOKENS`` is 0).

    A snapshot (not a foreign key) is what a reply stores: it still says what the reply read after
    the document is replaced or deleted.
    """
    hits = knowledge_search(project_id=project_id, query=question, limit=int(settings.KNOWLEDGE_CHAT_PASSAGES),
                            document_ids=document_ids)
    texts = [hit.passage.text for hit in hits]
    budget = int(settings.KNOWLEDGE_CONTEXT_TOKENS)
    headings = [hit.passage.heading for hit in hits]
    read = excerpts(texts=texts, question=question, budget=budget, headings=headings) if budget > 0 else texts
    return [
        {"n": number, "passage_id": hit.passage.pk, "document_id": hit.passage.document_id,
         "title": hit.document.title, "page": hit.passage.page, "heading": hit.passage.heading,
         "text": hit.passage.text, "excerpt": excerpt}
        for number, (hit, excerpt) in enumerate(zip(hits, read, strict=True), start=1)
    ]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
GAP = "\u2026"  # between sentences of an excerpt that are not next to each other in the passage


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _clip(sentence: str, limit: int) -> str:
    """The first words of ``sentence`` that fit in ``limit`` tokens, with an ellipsis."""
    kept: list[str] = []
    for word in sentence.split():
        if count_tokens(" ".join([*kept, word])) > limit - 1:
            break
        kept.append(word)
    return " ".join(kept) + "\u2026" if kept else ""


def _best_first(scores: list[int], index: int) -> tuple[int, int]:
    return -scores[index], index


def excerpts(*, texts: list[str], question: str, budget: int, headings: list[str] | None = None) -> list[str]:
    """What the prompt holds of each passage of ``texts`` (in rank order), ``budget`` tokens in all (counted
    as the chunker counts them): first each passage's sentence that shares the most words with ``question``
    (its first sentence if none does), then the passages' other sentences that share words with it, best
    first, then the sentence after the first passage's best one (an answer often follows the sentence that
    names its subject; every token of context costs time before the first token, so only there). An excerpt keeps the passage's order, with an ellipsis where sentences were left out. A best
    sentence is cut where it would leave less than an equal share of the budget to the passages after it.
    A passage's first line that repeats its heading (``headings``, which the prompt names) is left out.
    """
    terms = query_terms(question)
    split = [_sentences(text) for text in texts]
    for sentences, heading in zip(split, headings or [], strict=False):
        if sentences and heading and sentences[0].strip("# ").casefold() == heading.strip().casefold():
            del sentences[0]
    scores = [[terms_in(sentence, terms) for sentence in sentences] for sentences in split]
    chosen: list[dict[int, str]] = [{} for _ in texts]
    used = 0

    def take(passage: int, index: int, *, clip_to: int = 0) -> None:
        nonlocal used
        sentence = split[passage][index]
        if index in chosen[passage]:
            return
        cost = count_tokens(sentence)
        if clip_to and cost > min(clip_to, budget - used):
            sentence = _clip(sentence, min(clip_to, budget - used))
            cost = count_tokens(sentence)
        if sentence and used + cost <= budget:
            chosen[passage][index] = sentence
            used += cost

    # Each passage's sentences, best match first (ties: the earlier one).
    ranked = [sorted(range(len(row)), key=partial(_best_first, row)) for row in scores]
    best = [order[0] if order else None for order in ranked]
    share = max(budget // max(len(texts), 1), 1)
    for passage, index in enumerate(best):  # room kept for a share of the budget for each passage after it
        if index is not None:
            take(passage, index, clip_to=max(share, budget - used - share * (len(texts) - passage - 1)))
    for passage, order in enumerate(ranked):
        for index in order:
            if scores[passage][index] > 0:
                take(passage, index)
    if best and best[0] is not None and best[0] + 1 < len(split[0]):
        take(0, best[0] + 1)
    out = []
    for picked in chosen:
        parts: list[str] = []
        last = None
        for index in sorted(picked):
            if parts and last is not None and index != last + 1:
                parts.append(GAP)
            parts.append(picked[index])
            last = index
        out.append(" ".join(parts))
    return out


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
        # An older reply's snapshot has no excerpt: it read the whole passage.
        blocks.append(f"[{passage['n']}] ({where})\n{passage.get('excerpt', passage['text'])}")
    context = "\n\n".join(blocks) or NO_SOURCES
    head, _, tail = template.partition("{question}")
    return head.replace("{context}", context) + question + tail.replace("{context}", context)
