"""TextAssembler on hand-made token streams: one character or byte per token."""
from __future__ import annotations

from generation.text.decoding import TextAssembler


def chars(tokens):
    return "".join(chr(t) for t in tokens)


def utf8(tokens):
    return bytes(tokens).decode("utf-8", errors="replace")


def feed_one_by_one(assembler, tokens):
    deltas = [assembler.feed(tokens[: i + 1]) for i in range(len(tokens))]
    if not assembler.stopped:
        deltas.append(assembler.feed(tokens, final=True))
    return deltas


def test_stop_sequence_split_across_tokens_is_not_emitted():
    assembler = TextAssembler(chars, stop=("END",))

    deltas = feed_one_by_one(assembler, [ord(c) for c in "hello ENDgoodbye"])

    assert "".join(deltas) == assembler.text == "hello "
    assert assembler.stopped


def test_text_that_only_looks_like_a_stop_sequence_is_released_later():
    assembler = TextAssembler(chars, stop=("END",))

    deltas = feed_one_by_one(assembler, [ord(c) for c in "an ENigma"])

    assert deltas[3:5] == ["", ""]  # "E" and "N" held back
    assert "".join(deltas) == assembler.text == "an ENigma"
    assert not assembler.stopped


def test_a_possible_stop_prefix_at_the_end_is_flushed_by_the_final_feed():
    assembler = TextAssembler(chars, stop=("END",))

    deltas = feed_one_by_one(assembler, [ord(c) for c in "the EN"])

    assert deltas[-1] == "EN"
    assert assembler.text == "the EN"


def test_earliest_of_several_stop_sequences_wins():
    assembler = TextAssembler(chars, stop=("world", "lo w"))

    feed_one_by_one(assembler, [ord(c) for c in "hello world"])

    assert assembler.text == "hel"


def test_half_a_utf8_character_is_held_back():
    assembler = TextAssembler(utf8)
    tokens = list("né".encode())

    deltas = feed_one_by_one(assembler, tokens)

    assert deltas == ["n", "", "é", ""]
