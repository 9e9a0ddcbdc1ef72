"""BM25 search over passages (SQLite FTS5 here; PostgreSQL under ``make test-scale``) and its highlighting."""
from __future__ import annotations

import itertools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.helpers import membership
from webapp.knowledge import services
from webapp.knowledge.models import Passage
from webapp.knowledge.search import bm25_search, highlight, query_terms
from webapp.knowledge.tasks import index_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]


def _indexed(project, user, name, text, index=True):
    document = services.document_add(actor=membership(user, project), project=project,
                                      upload=SimpleUploadedFile(name, text.encode()))
    if index:
        index_document(document.pk)
    document.refresh_from_db()
    return document


def test_the_best_passage_comes_first(project, bob):
    _indexed(project, bob, "a.md", "# Garden\n\nTomatoes need sun.\n\n# Kitchen\n\nThe oven heats to 250 degrees.")
    _indexed(project, bob, "b.md", "# Oven care\n\nClean the oven monthly. The oven door seal wears.")
    hits = bm25_search(project_id=project.pk, query="how hot does the oven get in degrees?")
    # FTS5's bm25() puts Kitchen first (the rare "degrees"); PostgreSQL's ts_rank_cd, Oven care (three "oven").
    assert {h.passage.heading for h in hits[:2]} == {"Kitchen", "Oven care"}
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert "Garden" not in [h.passage.heading for h in hits]


def test_search_stays_in_its_project_and_skips_unindexed_documents(project, other_project, bob, mallory):
    ours = _indexed(project, bob, "ours.txt", "The launch code is walnut.")
    _indexed(other_project, mallory, "theirs.txt", "Their launch code is almond.")
    pending = _indexed(project, bob, "pending.txt", "Pending launch notes.", index=False)
    hits = bm25_search(project_id=project.pk, query="launch code")
    assert [h.passage.text for h in hits] == ["The launch code is walnut."]
    assert bm25_search(project_id=project.pk, query="launch", document_ids=[pending.pk]) == []
    assert [h.passage.document_id for h in bm25_search(project_id=project.pk, query="launch",
                                                       document_ids=[ours.pk])] == [ours.pk]


def test_query_syntax_is_never_passed_through(project, bob):
    _indexed(project, bob, "a.txt", "Alpha beta gamma.")
    for query in ['"unbalanced', "alpha AND NOT", "NEAR(alpha beta)", "*", "beta:gamma", "' OR 1=1 --"]:
        bm25_search(project_id=project.pk, query=query)  # no syntax error, whatever the user types
    assert [h.passage.text for h in bm25_search(project_id=project.pk, query="ALPHA")] == ["Alpha beta gamma."]
    assert query_terms("  ?!  ") == []


def test_deleting_a_document_takes_its_passages_out_of_the_index(project, bob):
    document = _indexed(project, bob, "a.txt", "Unique zebra fact.")
    assert bm25_search(project_id=project.pk, query="zebra")
    services.document_delete(actor=membership(bob, project), document=document)
    assert not Passage.objects.exists()
    assert bm25_search(project_id=project.pk, query="zebra") == []


def test_highlight_marks_terms_and_escapes_the_rest():
    html = highlight("Growing <b>tomatoes</b> grows well", ["grow", "tomatoes"])
    assert html == "<mark>Growing</mark> &lt;b&gt;<mark>tomatoes</mark>&lt;/b&gt; <mark>grows</mark> well"


def test_the_search_box_shows_highlighted_passages_to_a_viewer(project, bob, carol, client_for):
    _indexed(project, bob, "plan.md", "# Budget\n\nThe budget for <script>x</script> travel is 900 euros.")
    page = client_for(carol).get(reverse("knowledge:index", kwargs={"project_id": project.pk}),
                                 {"q": "travel budget"}).content.decode()
    assert "<mark>travel</mark>" in page and "<mark>budget</mark>" in page
    assert "&lt;script&gt;" in page and "<script>x</script>" not in page
