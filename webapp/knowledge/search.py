"""BM25 search over a project's passages: SQLite FTS5 when embedded, PostgreSQL full-text search when scaled.

Both run in the database the app already uses, so search needs no service
the embedded default lacks. The query is cut into words and OR-ed (each word
quoted, so no user text reaches the query syntax); passages of documents that
are not indexed yet ("done") never match.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from webapp.knowledge.models import Passage

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32
# Words too common to say a passage is relevant: a question made only of these finds nothing, so a
# reply says "no sources" rather than citing a passage that shares only "the" with it.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "or", "our", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "to", "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would",
    "you", "your",
})


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # higher is better, whatever the backend

    @property
    def document(self) -> Any:
        return self.passage.document


def query_terms(query: str) -> list[str]:
    """The words of ``query`` but the stop words, lower-cased, each once, at most ``MAX_TERMS``."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


# Every value is a parameter; the documents filter is one too (NULL: every document of the project).
_SQLITE_SQL = (
    "SELECT p.id, bm25(knowledge_passage_fts) AS rank FROM knowledge_passage_fts "
    "JOIN knowledge_passage p ON p.id = knowledge_passage_fts.rowid "
    "JOIN knowledge_document d ON d.id = p.document_id "
    "WHERE knowledge_passage_fts MATCH %s AND p.project_id = %s AND d.status = 'done' "
    "AND (%s IS NULL OR p.document_id IN (SELECT value FROM json_each(%s))) "
    "ORDER BY rank LIMIT %s"
)
_POSTGRES_SQL = (
    "SELECT p.id, ts_rank_cd(to_tsvector('english', p.heading || ' ' || p.text), q, 1) AS rank "
    "FROM knowledge_passage p JOIN knowledge_document d ON d.id = p.document_id, to_tsquery('english', %s) q "
    "WHERE to_tsvector('english', p.heading || ' ' || p.text) @@ q AND p.project_id = %s AND d.status = 'done' "
    "AND (%s::int[] IS NULL OR p.document_id = ANY(%s::int[])) ORDER BY rank DESC LIMIT %s"
)


def _sqlite(project_id: int, terms: list[str], limit: int, document_ids: list[int] | None) -> list[tuple[int, float]]:
    match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    ids = None if document_ids is None else json.dumps([int(i) for i in document_ids])
    with connection.cursor() as cursor:
        cursor.execute(_SQLITE_SQL, [match, project_id, ids, ids, limit])
        return [(row[0], -float(row[1])) for row in cursor.fetchall()]  # bm25(): lower is better


def _postgres(project_id: int, terms: list[str], limit: int, document_ids: list[int] | None) -> list[tuple[int, float]]:
    ids = None if document_ids is None else [int(i) for i in document_ids]
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_SQL, [" | ".join(terms), project_id, ids, ids, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def _bm25_ranked(project_id: int, query: str, limit: int, document_ids: list[int] | None) -> list[tuple[int, float]]:
    terms = query_terms(query)
    if not terms or document_ids == []:
        return []
    backend = _postgres if connection.vendor == "postgresql" else _sqlite
    return backend(project_id, terms, limit, document_ids)


def _passages(ids: list[int]) -> dict[int, Passage]:
    """The passages to show, with their documents (not their vectors: 1.5 KB each, never shown)."""
    return Passage.objects.select_related("document").defer("embedding").in_bulk(ids)


def bm25_search(*, project_id: int, query: str, limit: int = 10, document_ids: list[int] | None = None) -> list[Hit]:
    """The project's passages that best match ``query``, best first (empty for a query with no words)."""
    ranked = _bm25_ranked(project_id, query, limit, document_ids)
    passages = _passages([pk for pk, _ in ranked])
    return [Hit(passages[pk], score) for pk, score in ranked if pk in passages]


def highlight(text: str, terms: list[str]) -> SafeString:
    """``text`` escaped, with every word that starts with a query term (a stem's other forms) in ``<mark>``."""
    if not terms:
        return mark_safe(escape(text))  # noqa: S308 (escaped just now)
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\w*",
                         re.IGNORECASE)
    out: list[str] = []
    last = 0
    for found in pattern.finditer(text):
        out.append(escape(text[last:found.start()]))
        out.append(f"<mark>{escape(found.group(0))}</mark>")
        last = found.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 (every piece escaped)


# --- Dense search (ATELIER_EMBEDDING_MODEL) and its fusion with BM25 -------------------------------

def embedding_model() -> str:
    """The configured embedding model's name; empty: dense search is off."""
    return str(getattr(settings, "EMBEDDING_MODEL", "") or "")


def passage_vectors(texts: list[str]) -> list[bytes] | None:
    """Each text's unit vector as float32 bytes (stored with its passage); None when dense search is off."""
    name = embedding_model()
    if not name or not texts:
        return None
    from generation.embed import encoder_get

    return [row.tobytes() for row in encoder_get(name).encode(texts)]


def dense_search(*, project_id: int, query: str, limit: int = 10,
                 document_ids: list[int] | None = None) -> list[tuple[int, float]]:
    """(passage id, cosine) of the project's indexed passages nearest ``query`` by brute force,
    best first, those under ``KNOWLEDGE_DENSE_MIN_SCORE`` left out; empty when dense search is off."""
    name = embedding_model()
    if not name or not query.strip() or document_ids == []:
        return []
    return _dense_ranked(project_id, name, limit, document_ids, query)


def _dense_ranked(project_id: int, name: str, limit: int, document_ids: list[int] | None,
                  query: str) -> list[tuple[int, float]]:
    ids, vectors = _project_vectors(project_id=project_id, name=name, document_ids=document_ids)
    if not ids:
        return []
    from generation.embed import cosine_top, encoder_get

    # In this thread, on one torch thread (generation.embed): embedding the query in another thread while
    # BM25 read the database was slower on two cores (70 ms a search at 10k passages, against 51 ms in turn).
    vector = encoder_get(name).encode([query])[0]
    floor = float(settings.KNOWLEDGE_DENSE_MIN_SCORE)
    return [(ids[row], score) for row, score in cosine_top(vector, vectors, k=limit) if score >= floor]


# Per process: a project's vectors as one matrix, reused while its indexed documents stay the same. A
# document's passages are written with it in the transaction that ends its indexing "done", and never
# change after (a new version is a new document; deleting one deletes its passages), so the indexed
# documents' count, highest id and passage total say whether the matrix is stale: one read of the small
# documents table (counting the passages themselves read the whole passage table: a third of a search).
_MATRICES: dict[Any, tuple[tuple[int, int | None, int | None], list[int], np.ndarray]] = {}
_MAX_MATRICES = 32


def _project_vectors(*, project_id: int, name: str, document_ids: list[int] | None) -> tuple[list[int], np.ndarray]:
    from django.db.models import Count, Max, Sum

    from webapp.knowledge.models import Document

    documents = Document.objects.filter(project_id=project_id, status="done")
    if document_ids is not None:
        documents = documents.filter(pk__in=[int(i) for i in document_ids])
    stamp = documents.aggregate(count=Count("id"), last=Max("id"), passages=Sum("passages_count"))
    signature = (int(stamp["count"]), stamp["last"], stamp["passages"])
    key = (project_id, name, tuple(document_ids) if document_ids is not None else None)
    cached = _MATRICES.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    rows = Passage.objects.filter(project_id=project_id, document__status="done", embedding_model=name,
                                  embedding__isnull=False)
    if document_ids is not None:
        rows = rows.filter(document_id__in=[int(i) for i in document_ids])
    found = list(rows.values_list("id", "embedding"))
    ids = [pk for pk, _ in found]
    vectors = np.frombuffer(b"".join(bytes(vector or b"") for _, vector in found), dtype=np.float32)
    vectors = vectors.reshape(len(found), -1) if found else vectors.reshape(0, 0)
    if len(_MATRICES) >= _MAX_MATRICES:
        _MATRICES.pop(next(iter(_MATRICES)))
    _MATRICES[key] = (signature, ids, vectors)
    return ids, vectors


def _same_word(term: str, word: str) -> bool:
    """``word`` is ``term`` or one of its forms (as the search's stemming and the highlight see them)."""
    return word.startswith(term) or (len(word) >= 4 and term.startswith(word))


def terms_in(text: str, terms: list[str]) -> int:
    """How many of ``terms`` (``query_terms``) ``text`` holds, in any of their forms."""
    words = set(_WORD.findall(text.lower()))
    return sum(1 for term in terms if any(_same_word(term, word) for word in words))


def lexical_coverage(terms: list[str], passage_id: int) -> float:
    """The share of ``terms`` that BM25's best passage contains: how much of the question its ranking rests on.

    A paraphrased question shares few words with its answer, so BM25's order then rests on one or two
    common words (a place's name) and says little; a question in the documents' own words shares most.
    """
    if not terms:
        return 0.0
    row = Passage.objects.filter(pk=passage_id).values_list("heading", "text").first()
    if row is None:
        return 0.0
    return terms_in(f"{row[0]} {row[1]}", terms) / len(terms)


def knowledge_search(*, project_id: int, query: str, limit: int = 10,
                     document_ids: list[int] | None = None) -> list[Hit]:
    """BM25 alone, or (with an embedding model) BM25 and dense search fused by reciprocal rank; a hit's
    score is then its fused score. Only the hits returned are loaded.

    BM25's ranks weigh ``KNOWLEDGE_BM25_WEIGHT`` (2.5) times the square of the share of the question's terms
    that its best passage holds (:func:`lexical_coverage`), so a question asked in other words than the
    documents' (sharing little but a name with its answer) leans on dense search, and one in their words on
    BM25 as much as on dense search or more (bench/knowledge.py: with the share alone, not squared, no weight
    kept both BM25's recall on the reworded questions and dense search's MRR on the paraphrased ones).
    """
    name = embedding_model()
    if not name:
        return bm25_search(project_id=project_id, query=query, limit=limit, document_ids=document_ids)
    from generation.embed import rrf_fuse

    depth = max(limit * 4, 20)
    if not query.strip() or document_ids == []:
        return []
    lexical = _bm25_ranked(project_id, query, depth, document_ids)
    dense = _dense_ranked(project_id, name, depth, document_ids, query)
    weight = float(settings.KNOWLEDGE_BM25_WEIGHT)
    if lexical:  # squared: a question half in the documents' words counts a quarter
        weight *= lexical_coverage(query_terms(query), lexical[0][0]) ** 2
    ranked = rrf_fuse([pk for pk, _ in lexical], [pk for pk, _ in dense], limit=limit, weights=(weight, 1.0))
    passages = _passages(ranked)
    return [Hit(passages[pk], 1.0 / (60 + rank)) for rank, pk in enumerate(ranked, start=1) if pk in passages]
