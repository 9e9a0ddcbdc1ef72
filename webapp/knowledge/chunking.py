"""Splitting a document's blocks into passages (plain Python: no Django here).

A passage holds about ``target`` tokens. It never spans two pages or two
sections: a heading starts a new passage, and the heading's text opens it,
so a search for the section's subject finds it. A section longer than the
target is cut between paragraphs (or sentences, or words, for a giant one),
and each cut passage repeats the last ``overlap`` tokens of the one before,
so an answer that straddles a cut is whole in one of the two.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from webapp.knowledge.parsing import Block

# Words and single punctuation marks: within about 25% of a BPE tokenizer's count for English
# text, and no tokenizer to load in the web process.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    heading: str
    tokens: int


def _pieces(text: str, target: int) -> list[str]:
    """``text`` cut into pieces of at most ``target`` tokens: at sentence ends, else between words."""
    if count_tokens(text) <= target:
        return [text]
    pieces: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        if count_tokens(sentence) <= target:
            pieces.append(sentence)
            continue
        words = sentence.split()
        step = max(1, target // 2)
        pieces.extend(" ".join(words[i:i + step]) for i in range(0, len(words), step))
    return pieces


def chunk(blocks: Iterable[Block], *, target: int = 200, overlap: int = 40) -> list[Chunk]:
    """The passages of ``blocks``, in order; ``overlap`` must be below ``target``."""
    if target < 8 or not 0 <= overlap < target:
        raise ValueError("chunking needs target >= 8 and 0 <= overlap < target")
    chunks: list[Chunk] = []
    units: list[tuple[str, int]] = []  # the current passage's pieces with their token counts
    fresh = 0  # how many of ``units`` are new (not overlap carried from the passage before)
    where: tuple[int | None, str] = (None, "")

    def flush(carry: bool) -> None:
        nonlocal units, fresh
        if fresh:
            chunks.append(Chunk("\n\n".join(u for u, _ in units), where[0], where[1], sum(n for _, n in units)))
        kept: list[tuple[str, int]] = []
        if carry and overlap:
            total = 0
            for unit in reversed(units):
                if total + unit[1] > overlap:
                    break
                kept.insert(0, unit)
                total += unit[1]
        units, fresh = kept, 0

    for block in blocks:
        place = (block.page, block.heading)
        if block.is_heading or place != where:
            flush(carry=False)
            where = place
        for piece in _pieces(block.text, target):
            tokens = count_tokens(piece)
            if fresh and sum(n for _, n in units) + tokens > target:
                flush(carry=True)
                while units and sum(n for _, n in units) + tokens > target:
                    units.pop(0)
            units.append((piece, tokens))
            fresh += 1
    flush(carry=False)
    return chunks
