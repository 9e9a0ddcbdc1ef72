"""Reads of knowledge, scoped by membership: outsiders get 404."""
from __future__ import annotations

from typing import Any

from django.http import Http404

from webapp.knowledge.models import Document
from webapp.workspaces.selectors import project_get_for_member


def document_list(*, project: Any) -> list[Document]:
    """The project's documents, newest first, with who added them."""
    return list(Document.objects.filter(project=project).select_related("added_by"))


def document_get_for_member(*, user: Any, project_id: int, document_id: int) -> Document:
    """The document ``document_id`` of a project ``user`` belongs to; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        document = Document.objects.select_related("added_by").get(pk=document_id, project=project)
    except Document.DoesNotExist:
        raise Http404("No such document") from None
    document.project = project
    return document


def passage_search(*, project: Any, query: str, limit: int = 10) -> list[dict[str, Any]]:
    """The project's passages best matching ``query`` (BM25), each with its text highlighted for the page."""
    from webapp.knowledge.search import highlight, knowledge_search, query_terms

    terms = query_terms(query)
    return [{"hit": hit, "passage": hit.passage, "document": hit.document, "html": highlight(hit.passage.text, terms)}
            for hit in knowledge_search(project_id=project.pk, query=query, limit=limit)]
