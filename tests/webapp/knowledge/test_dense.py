"""Dense knowledge search: mean-pooled MiniLM vectors stored with passages, numpy brute force, RRF with BM25.

The fast tests need no model; those marked ``model`` load the real default embedding model.
"""
from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.embed import (
    DEFAULT_MODEL,
    EmbeddingModelMissing,
    cosine_top,
    encoder_get,
    model_dir,
    rrf_fuse,
)
from tests.helpers import membership
from webapp.knowledge import search, services
from webapp.knowledge.models import Passage
from webapp.knowledge.search import bm25_search, dense_search, knowledge_search
from webapp.knowledge.tasks import index_document


@pytest.fixture(autouse=True)
def _fresh_matrices():
    """Rolled-back test databases reuse ids, so one test's cached project matrix could pass for another's."""
    search._MATRICES.clear()
    yield
    search._MATRICES.clear()


def test_rrf_puts_what_both_rankings_agree_on_first():
    assert rrf_fuse(["a", "b", "c"], ["c", "a", "d"]) == ["a", "c", "b", "d"]
    assert rrf_fuse(["a", "b"], [], limit=1) == ["a"]
    assert rrf_fuse([], []) == []


def test_cosine_top_ranks_by_dot_product_and_caps_k():
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    top = cosine_top(np.array([0, 1], dtype=np.float32), vectors, k=5)
    assert [row for row, _ in top] == [1, 2, 0]
    assert top[0][1] == pytest.approx(1.0) and top[1][1] == pytest.approx(0.8)
    assert cosine_top(np.array([1, 0], dtype=np.float32), vectors[:0], k=3) == []


def test_an_unknown_model_name_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingModelMissing, match="no-such-model"):
        model_dir("no-such-model")
    assert model_dir(str(tmp_path)) == tmp_path


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_server", "no_enqueue")
def test_with_dense_search_off_passages_store_no_vector_and_search_is_bm25(project, bob, settings):
    settings.EMBEDDING_MODEL = ""
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("a.txt", b"The launch code is walnut."))
    index_document(document.pk)
    assert list(Passage.objects.values_list("embedding", "embedding_model")) == [(None, "")]
    assert dense_search(project_id=project.pk, query="launch") == []
    assert [h.passage.pk for h in knowledge_search(project_id=project.pk, query="launch code")] == [
        h.passage.pk for h in bm25_search(project_id=project.pk, query="launch code")]


@pytest.mark.model
def test_the_real_model_puts_a_paraphrase_nearer_than_an_unrelated_sentence():
    encoder = encoder_get(DEFAULT_MODEL)
    vectors = encoder.encode(["How do I reset my password?", "I forgot my login credentials.",
                              "The quarterly revenue grew by eight percent."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert encoder_get(DEFAULT_MODEL) is encoder  # loaded once per process


@pytest.mark.model
@pytest.mark.django_db
@pytest.mark.usefixtures("redis_server", "no_enqueue")
def test_dense_search_finds_a_passage_that_shares_no_word_with_the_question(project, bob, settings):
    settings.EMBEDDING_MODEL = DEFAULT_MODEL
    text = ("# Felines\n\nCats sleep for most of the day and hunt at dusk.\n\n"
            "# Finance\n\nThe company's earnings grew strongly last quarter.")
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("notes.md", text.encode()))
    index_document(document.pk)
    stored = list(Passage.objects.filter(document=document).values_list("embedding_model", "embedding"))
    assert stored and all(name == DEFAULT_MODEL and len(bytes(vector)) == 384 * 4 for name, vector in stored)
    question = "How much do kittens doze?"
    assert bm25_search(project_id=project.pk, query=question) == []
    dense = dense_search(project_id=project.pk, query=question)
    assert dense and "Cats sleep" in Passage.objects.get(pk=dense[0][0]).text
    fused = knowledge_search(project_id=project.pk, query=question, limit=1)
    assert [h.passage.heading for h in fused] == ["Felines"]
    # Nothing in the project is about this: no passage clears the similarity floor.
    assert dense_search(project_id=project.pk, query="Which port does the PostgreSQL server listen on?") == []


def test_a_single_text_is_embedded_on_one_torch_thread_and_a_batch_on_the_process_threads(monkeypatch):
    """A query's vector runs on one thread (a second one's wake-ups cost more than it gives between a
    search's reads); passages in a batch keep the process's threads; the count is restored either way."""
    import torch

    from generation import embed

    seen = []

    class Model:
        def __call__(self, **batch):
            seen.append(torch.get_num_threads())
            return type("Out", (), {"last_hidden_state": torch.ones(batch["input_ids"].shape[0], 3, 4)})()

    def tokenizer(texts, **options):
        return {"input_ids": torch.ones(len(texts), 3, dtype=torch.long),
                "attention_mask": torch.ones(len(texts), 3, dtype=torch.long)}

    import threading

    encoder = embed.Encoder(name="tiny", tokenizer=tokenizer, model=Model(), dimensions=4, _lock=threading.Lock())
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        encoder.encode(["one query"])
        encoder.encode(["a passage", "another passage"])
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_rrf_weights_favour_the_heavier_ranking_and_need_one_per_ranking():
    from generation.embed import rrf_fuse

    lexical, dense = ["a", "b", "c"], ["c", "b", "a"]
    assert rrf_fuse(lexical, dense, weights=(0.5, 1.0))[0] == "c"
    assert rrf_fuse(lexical, dense, weights=(1.0, 0.5))[0] == "a"
    with pytest.raises(ValueError, match="one weight per ranking"):
        rrf_fuse(lexical, dense, weights=(1.0,))


def _bm25_only_passages(project, bob, settings, text: str) -> list[Passage]:
    """Index ``text`` without vectors (its progress goes out through Redis: tests using it ask for redis_server)."""
    settings.EMBEDDING_MODEL = ""
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("notes.md", text.encode()))
    index_document(document.pk)
    return list(Passage.objects.filter(document=document).order_by("ordinal"))


def test_lexical_coverage_is_the_share_of_question_terms_in_the_passage(project, bob, settings, redis_server):
    cats, _ = _bm25_only_passages(project, bob, settings, "# Felines\n\nCats hunt at dusk in Tallow Creek.\n\n"
                                                          "# Finance\n\nEarnings grew strongly last quarter.")

    assert search.lexical_coverage(search.query_terms("When do cats hunt?"), cats.pk) == 1.0
    # "hunting" is a form of "hunt"; "Tallow" matches; "foxes" and "sleep" are not there.
    assert search.lexical_coverage(search.query_terms("Do foxes sleep when hunting in Tallow?"), cats.pk) == 0.5
    assert search.lexical_coverage([], cats.pk) == 0.0


def test_fused_search_weighs_bm25_by_how_much_of_the_question_its_best_passage_holds(
    project, bob, settings, monkeypatch, redis_server
):
    first, second = _bm25_only_passages(project, bob, settings, "# One\n\nAlpha beta gamma.\n\n# Two\n\nDelta.")
    settings.EMBEDDING_MODEL = "any"
    monkeypatch.setattr(search, "_bm25_ranked", lambda *args: [(first.pk, 3.0), (second.pk, 1.0)])
    monkeypatch.setattr(search, "_dense_ranked", lambda *args: [(second.pk, 0.9), (first.pk, 0.8)])
    seen = []

    def coverage(share):
        def measured(terms, passage_id):
            seen.append((terms, passage_id))
            return share
        return measured

    # BM25 and dense disagree; weighted 1.5 with every question term in its best passage, BM25's order wins.
    settings.KNOWLEDGE_BM25_WEIGHT = 1.5
    monkeypatch.setattr(search, "lexical_coverage", coverage(1.0))
    assert [h.passage.pk for h in knowledge_search(project_id=project.pk, query="alpha gamma", limit=2)] == [
        first.pk, second.pk]
    assert seen == [(["alpha", "gamma"], first.pk)]
    # The same rankings when BM25's best passage holds a fifth of the question: dense search's order wins.
    monkeypatch.setattr(search, "lexical_coverage", coverage(0.2))
    assert [h.passage.pk for h in knowledge_search(project_id=project.pk, query="alpha gamma", limit=2)] == [
        second.pk, first.pk]
    # The share counts squared: at 0.7, BM25 weighs 1.5 x 0.49, under dense search's 1 (linear, 1.05 would win).
    monkeypatch.setattr(search, "lexical_coverage", coverage(0.7))
    assert [h.passage.pk for h in knowledge_search(project_id=project.pk, query="alpha gamma", limit=2)] == [
        second.pk, first.pk]
