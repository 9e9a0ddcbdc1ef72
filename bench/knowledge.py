"""Project knowledge: retrieval quality, indexing throughput and search latency (issue 24).

    .venv/bin/python bench/knowledge.py [--passages 10000] [--queries 200] [--only quality|indexing|latency|chat]

Runs on a temporary SQLite database (the embedded setup: FTS5), no worker needed:

- **Quality**: 24 documents written for this bench by the seeded generator below (fictional towns, each
  with six sections of facts: no public text is used) and 144 questions, one per fact, worded
  differently from the passage (synonyms, other word order). Each question has one answer passage.
  A second, harder set paraphrases each question so it shares little more than the town's name with its
  passage. Prints recall@5 and MRR@10 of BM25, dense and fused search (``ATELIER_EMBEDDING_MODEL`` on).
- **Indexing**: 40 ten-page PDFs through the worker's own steps (pypdf parse, chunk, store passages with
  the FTS5 triggers), in pages per second. The job lifecycle around them (claim, heartbeat) is left out.
- **Search latency**: a project with ``--passages`` passages; p50 and p95 of ``--queries`` BM25 and fused searches
  (the passages' vectors are random unit vectors; each query is embedded by the real model).
- **Chat with knowledge**: the extra time to the first token over the same question without it (``chat``).

Figures print to stdout; quote them as ratios from one run.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOWNS = ["Arlen", "Brisk", "Calder", "Dunmore", "Elsby", "Fenwick", "Garrow", "Hollin", "Ivel", "Jarrow",
         "Kestel", "Lanark", "Morven", "Nairn", "Orrin", "Pellow", "Quarry", "Rosslyn", "Selby", "Tarn",
         "Ulster", "Vance", "Wexley", "Yarrow"]
# (section heading, passage sentence, question, paraphrase): {town} and {value} are filled in per document.
# The paraphrase shares little more than the town's name with its passage (the harder set).
FACTS = [
    ("Water", "The reservoir of {town} holds {value} million litres of drinking water.",
     "How much drinking water can {town} store?",
     "What volume can the supply for taps in {town} keep?"),
    ("Trains", "Trains leave {town} station for the coast every {value} minutes.",
     "How often is there a train from {town} to the seaside?",
     "How frequently can one ride the rails from {town} to the beach?"),
    ("School", "The grammar school of {town} teaches {value} pupils.",
     "How many children attend the {town} grammar school?",
     "What is the enrolment of the academy for older kids in {town}?"),
    ("Market", "The {town} market opens on the {value}th day of each month.",
     "On which day of the month is the {town} market held?",
     "When can shoppers visit the bazaar of {town}?"),
    ("Bridge", "The stone bridge at {town} spans {value} metres across the river.",
     "How long is the {town} river crossing made of stone?",
     "What length is the masonry span over the stream in {town}?"),
    ("Festival", "The lantern festival of {town} draws {value} thousand visitors.",
     "How many people come to the {town} lantern celebration?",
     "What crowd does the light celebration in {town} attract?"),
]
FILLER = ("The council meets in the old hall. Records are kept in the archive. Visitors are welcome "
          "during the week. The roads are maintained by the county.")


def documents(seed: int = 24, *, paraphrased: bool = False) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(file name, Markdown text, [(question, answer substring)]) per town (``paraphrased``: the harder set)."""
    rng = random.Random(seed)
    out = []
    for town in TOWNS:
        sections, questions = [], []
        for heading, sentence, plain, paraphrase in FACTS:
            question = paraphrase if paraphrased else plain
            value = str(rng.randint(11, 97))
            fact = sentence.format(town=town, value=value)
            sections.append(f"# {heading}\n\n{FILLER}\n\n{fact}\n\n{FILLER}")
            questions.append((question.format(town=town), fact))
        out.append((f"{town.lower()}.md", f"# {town}\n\nA town guide.\n\n" + "\n\n".join(sections), questions))
    return out


def _setup() -> None:
    folder = tempfile.mkdtemp(prefix="atelier-bench-knowledge-")
    os.environ["ATELIER_DATABASE_NAME"] = str(Path(folder) / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _project():  # type: ignore[no-untyped-def]
    from webapp.workspaces.models import Project, Team

    team = Team.objects.create(name=f"bench {time.time()}")
    return Project.objects.create(team=team, name="bench")


def _store(project, filename: str, data: bytes) -> int:  # type: ignore[no-untyped-def]
    from django.conf import settings

    from webapp.knowledge.chunking import chunk
    from webapp.knowledge.models import Document, Passage
    from webapp.knowledge.parsing import parse

    blocks = parse(filename=filename, data=data)
    chunks = chunk(blocks, target=settings.KNOWLEDGE_CHUNK_TOKENS, overlap=settings.KNOWLEDGE_CHUNK_OVERLAP)
    document = Document.objects.create(project=project, title=filename, filename=filename, kind=filename[-3:],
                                       byte_size=len(data), sha256="0" * 64, file="-", status="done")
    from webapp.knowledge.search import embedding_model, passage_vectors

    vectors = passage_vectors([f"{c.heading}\n{c.text}" if c.heading else c.text for c in chunks])
    Passage.objects.bulk_create(Passage(document=document, project=project, ordinal=i, page=c.page,
                                        heading=c.heading, text=c.text, tokens=c.tokens,
                                        embedding=vectors[i] if vectors else None,
                                        embedding_model=embedding_model() if vectors else "")
                                for i, c in enumerate(chunks))
    return len(chunks)


def quality() -> None:
    from webapp.knowledge.search import bm25_search, dense_search, embedding_model, knowledge_search

    project = _project()
    for filename, text, _ in documents():
        _store(project, filename, text.encode())
    methods = {"BM25": lambda q: [h.passage.text for h in bm25_search(project_id=project.pk, query=q, limit=10)]}
    if embedding_model():
        from webapp.knowledge.models import Passage

        texts = dict(Passage.objects.filter(project=project).values_list("id", "text"))
        methods["dense"] = lambda q: [texts[pk] for pk, _ in dense_search(project_id=project.pk, query=q, limit=10)]
        methods["fused"] = lambda q: [h.passage.text for h in knowledge_search(project_id=project.pk, query=q,
                                                                              limit=10)]
    for label, paraphrased in (("reworded", False), ("paraphrased", True)):
        questions = [pair for _, _, qs in documents(paraphrased=paraphrased) for pair in qs]
        print(f"quality ({label}): {len(documents())} documents, {len(questions)} questions")
        for name, search in methods.items():
            recall, reciprocal = 0, 0.0
            for question, answer in questions:
                found = search(question)
                rank = next((i for i, text in enumerate(found, start=1) if answer in text), None)
                recall += rank is not None and rank <= 5
                reciprocal += 1 / rank if rank else 0.0
            print(f"  {name:5} recall@5 {recall / len(questions):.3f}  MRR@10 {reciprocal / len(questions):.3f}")
        # What a chat prompt holds: the excerpts of the top passages (KNOWLEDGE_CONTEXT_TOKENS), or them whole.
        from django.conf import settings

        from webapp.knowledge.context import knowledge_passages
        held = {"excerpts": 0, "whole passages": 0}
        for question, answer in questions:
            passages = knowledge_passages(project_id=project.pk, question=question)
            held["excerpts"] += any(answer in p["excerpt"] for p in passages)
            held["whole passages"] += any(answer in p["text"] for p in passages)
        print(f"  the prompt holds the answer ({settings.KNOWLEDGE_CHAT_PASSAGES} passages, "
              f"{settings.KNOWLEDGE_CONTEXT_TOKENS} tokens of excerpts): excerpts "
              f"{held['excerpts'] / len(questions):.3f}, whole passages {held['whole passages'] / len(questions):.3f}")


def indexing(pdfs: int = 40, pages: int = 10) -> None:
    from tests.webapp.knowledge.pdfs import pdf_bytes

    project = _project()
    rng = random.Random(7)
    words = FILLER.replace(".", "").split()
    files = [pdf_bytes(["\n".join(" ".join(rng.choices(words, k=12)) for _ in range(30)) for _ in range(pages)])
             for _ in range(pdfs)]
    start = time.perf_counter()
    passages = sum(_store(project, f"doc{i}.pdf", data) for i, data in enumerate(files))
    elapsed = time.perf_counter() - start
    print(f"indexing: {pdfs * pages} PDF pages, {passages} passages in {elapsed:.2f} s: "
          f"{pdfs * pages / elapsed:.1f} pages/s")


def latency(passages: int, queries: int) -> None:
    import numpy as np

    from webapp.knowledge.models import Document, Passage
    from webapp.knowledge.search import bm25_search, embedding_model, knowledge_search

    project = _project()
    rng = random.Random(11)
    model = embedding_model()
    # Random unit vectors stand in for 10k embedded passages: brute-force scoring costs the same whatever
    # they hold (embedding 10k passages on this machine would take minutes); the query is embedded for real.
    unit = np.random.default_rng(11).standard_normal((passages, 384)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    vocabulary = [f"term{i}" for i in range(5000)] + FILLER.replace(".", "").lower().split()
    document = Document.objects.create(project=project, title="big", filename="big.txt", kind="txt", byte_size=0,
                                       sha256="0" * 64, file="-", status="done")
    for start in range(0, passages, 1000):
        Passage.objects.bulk_create(
            Passage(document=document, project=project, ordinal=i, text=" ".join(rng.choices(vocabulary, k=150)),
                    embedding=unit[i].tobytes() if model else None, embedding_model=model)
            for i in range(start, min(passages, start + 1000)))
    searches = {"BM25": bm25_search} | ({"fused": knowledge_search} if model else {})
    query_list = [" ".join(rng.choices(vocabulary[:5000], k=6)) for _ in range(queries)]
    if model:
        knowledge_search(project_id=project.pk, query="warm up", limit=10)  # the model loads once per process
    for name, search in searches.items():
        timings = []
        for query in query_list:
            begin = time.perf_counter()
            search(project_id=project.pk, query=query, limit=10)
            timings.append((time.perf_counter() - begin) * 1000)
        timings.sort()
        print(f"search latency at {passages} passages, {queries} queries: {name} p50 "
              f"{statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms")


def chat(count: int) -> None:
    """Chat with knowledge: the extra time to the first token over the same chat without it. Per question, on
    the default chat model through the text engine (greedy, one token): the plain question's time to first
    token, then the fused search of the send (``knowledge_passages``, as the web process runs it) plus the
    first token of the prompt with the passages in the default context template (the worker's prompt). The
    rest of the path (queue, claim, stream) is the same on both sides."""
    from generation.text import ChatMessage, DecodingParams, TextFinal, TextRequest, generate_text
    from webapp.knowledge.context import DEFAULT_CONTEXT_TEMPLATE, context_render, knowledge_passages

    project = _project()
    for filename, text, _ in documents():
        _store(project, filename, text.encode())
    questions = [question for _, _, pairs in documents() for question, _ in pairs][:count]

    def first_token(content: str) -> tuple[float, int]:
        request = TextRequest(messages=(ChatMessage("user", content),),
                              params=DecodingParams(strategy="greedy", max_new_tokens=1))
        for item in generate_text(request):
            if isinstance(item, TextFinal):
                return item.time_to_first_token or 0.0, item.prompt_tokens
        raise RuntimeError("no final record")

    first_token(questions[0])  # the engine starts once
    plain, searches, extras, tokens = [], [], [], []
    for question in questions:
        alone, alone_tokens = first_token(question)
        begin = time.perf_counter()
        passages = knowledge_passages(project_id=project.pk, question=question)
        search = time.perf_counter() - begin
        with_knowledge, knowledge_tokens = first_token(
            context_render(template=DEFAULT_CONTEXT_TEMPLATE, passages=passages, question=question))
        plain.append(alone)
        searches.append(search)
        extras.append(search + with_knowledge - alone)
        tokens.append(knowledge_tokens - alone_tokens)
    ms = [round(statistics.median(values) * 1000, 1) for values in (plain, searches, extras)]
    print(f"chat with knowledge ({len(questions)} questions, {statistics.median(tokens):.0f} more prompt tokens at "
          f"the median): first token alone p50 {ms[0]} ms; the search p50 {ms[1]} ms; extra time to the first "
          f"token p50 {ms[2]} ms, p95 {sorted(extras)[int(len(extras) * 0.95) - 1] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", choices=("quality", "indexing", "latency", "chat"), help="run one part")
    parser.add_argument("--chat-questions", type=int, default=40)
    args = parser.parse_args()
    _setup()
    if args.only in (None, "quality"):
        quality()
    if args.only in (None, "indexing"):
        indexing()
    if args.only in (None, "latency"):
        latency(args.passages, args.queries)
    if args.only in (None, "chat"):
        chat(args.chat_questions)


if __name__ == "__main__":
    main()
