"""Reading uploads into blocks and cutting them into passages (plain Python)."""
from __future__ import annotations

import itertools

import pytest

from tests.webapp.knowledge.pdfs import docx_bytes, encrypted_pdf_bytes, pdf_bytes
from webapp.knowledge.chunking import chunk, count_tokens
from webapp.knowledge.parsing import Block, DocumentError, Limits, html_text, parse


def test_markdown_blocks_keep_their_heading():
    blocks = parse(filename="notes.md", data=b"# Intro\n\nHello there.\n\n## Setup\n\nInstall it.\nThen run it.")
    body = [(b.heading, b.text) for b in blocks if not b.is_heading]
    assert body == [("Intro", "Hello there."), ("Setup", "Install it.\nThen run it.")]


def test_html_drops_scripts_and_keeps_headings():
    page = ("<html><head><title>x</title><script>evil()</script></head><body><h2>Plan</h2>"
            "<p>First &amp; foremost.</p><style>p{}</style><p>Second.</p></body></html>")
    text = html_text(page)
    blocks = parse(filename="page.html", data=page.encode())
    assert "evil" not in text and "p{}" not in text
    assert [(b.heading, b.text) for b in blocks if not b.is_heading] == [("Plan", "First & foremost."),
                                                                         ("Plan", "Second.")]


def test_pdf_blocks_keep_their_page_and_report_progress():
    seen = []
    blocks = parse(filename="r.pdf", data=pdf_bytes(["The cover page.", "The vault code is 4471."]),
                   on_page=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    assert [(b.page, "4471" in b.text) for b in blocks] == [(1, False), (2, True)]


def test_docx_headings_become_headings():
    data = docx_bytes([("Heading 1", "Travel policy"), ("", "Book trains over flights."), ("Heading 2", "Hotels"),
                       ("", "Up to 120 euros a night.")])
    blocks = parse(filename="policy.docx", data=data)
    assert [(b.heading, b.text) for b in blocks if not b.is_heading] == [
        ("Travel policy", "Book trains over flights."), ("Hotels", "Up to 120 euros a night.")]


@pytest.mark.parametrize(("filename", "data", "message"), [
    ("logo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("latin.md", "Caf\u00e9 cr\u00e8me".encode("latin-1"), "not in UTF-8"),
    ("tool.exe", b"MZ", "not a kind of file"),
    ("scan.pdf", pdf_bytes(["", ""]), "no text layer"),
    ("secret.pdf", encrypted_pdf_bytes(["hidden"]), "encrypted"),
    ("broken.pdf", b"%PDF-1.4\nnot really", "not a readable PDF"),
    ("broken.docx", b"PK\x03\x04 nope", "not a readable .docx"),
    ("empty.md", b"\n\n  \n", "holds no text"),
])
def test_each_bad_file_gets_a_clear_reason(filename, data, message):
    with pytest.raises(DocumentError, match=message):
        parse(filename=filename, data=data)


def test_a_pdf_with_too_many_pages_or_objects_is_a_bomb():
    data = pdf_bytes(["a", "b", "c", "d"])
    with pytest.raises(DocumentError, match="4 pages, more than the 3"):
        parse(filename="bomb.pdf", data=data, limits=Limits(max_pages=3))
    with pytest.raises(DocumentError, match=r"objects.*PDF bomb"):
        parse(filename="bomb.pdf", data=data, limits=Limits(max_objects=5))


def test_utf16_with_a_byte_order_mark_is_read():
    blocks = parse(filename="w.txt", data="Gr\u00fc\u00dfe aus K\u00f6ln".encode("utf-16"))
    assert blocks[0].text == "Gr\u00fc\u00dfe aus K\u00f6ln"


def test_a_heading_or_a_page_starts_a_new_passage():
    blocks = [Block("Intro", None, "Intro", True), Block("one two.", None, "Intro"),
              Block("Next", None, "Next", True), Block("three.", None, "Next"), Block("four.", 2, "Next")]
    chunks = chunk(blocks, target=50, overlap=5)
    assert [(c.heading, c.page, c.text) for c in chunks] == [
        ("Intro", None, "Intro\n\none two."), ("Next", None, "Next\n\nthree."), ("Next", 2, "four.")]


def test_a_long_section_is_cut_near_the_target_with_overlap():
    paragraphs = [f"Paragraph {i} says fact number {i} clearly." for i in range(40)]
    chunks = chunk([Block(p, 1, "Facts") for p in paragraphs], target=40, overlap=10)
    assert len(chunks) > 5
    assert all(c.tokens <= 40 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.text.split("\n\n")[-1] == after.text.split("\n\n")[0]  # the overlap repeats
    joined = " ".join(c.text for c in chunks)
    assert all(p in joined for p in paragraphs)


def test_a_giant_paragraph_is_cut_between_words():
    text = " ".join(f"word{i}" for i in range(500))
    chunks = chunk([Block(text)], target=60, overlap=0)
    assert all(c.tokens <= 60 for c in chunks) and len(chunks) >= 9
    assert " ".join(c.text for c in chunks).split() == text.split()
    assert count_tokens("Hello, world!") == 4
