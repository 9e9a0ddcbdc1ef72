"""Turning an uploaded file into blocks of text (plain Python: no Django here).

Each block is a paragraph or a heading with the page it is on (PDF) and the
heading it sits under. Every way a file can be unusable raises
``DocumentError`` with a sentence a user can act on; nothing is stored
before parsing has finished, so a bad file leaves nothing half-indexed.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

KINDS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
         ".pdf": "pdf", ".docx": "docx"}
TEXT_KINDS = ("txt", "md", "html")


class DocumentError(ValueError):
    """The file cannot be indexed; the message says why, in words a user may read."""


@dataclass(frozen=True)
class Limits:
    max_pages: int = 2000
    max_objects: int = 500_000
    max_chars: int = 20_000_000
    max_unzipped_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class Block:
    text: str
    page: int | None = None
    heading: str = ""
    is_heading: bool = False


def kind_for(filename: str) -> str:
    """The parser for ``filename`` by its extension; DocumentError for one we cannot read."""
    match = re.search(r"(\.[A-Za-z0-9]+)$", filename or "")
    kind = KINDS.get(match.group(1).lower()) if match else None
    if kind is None:
        raise DocumentError(
            f"{filename!r} is not a kind of file Atelier indexes: upload .txt, .md, .html, .pdf or .docx."
        )
    return kind


def decode_text(data: bytes) -> str:
    """The text of a plain-text upload: UTF-8 (with or without a byte-order mark), or UTF-16 with one.

    A file with NUL bytes or many control characters is binary whatever its name says; any other
    encoding is refused rather than guessed, so no passage holds mojibake.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise DocumentError("The file says it is UTF-16 but is not valid UTF-16.") from None
    else:
        if b"\x00" in data[:65536]:
            raise DocumentError("This is a binary file, not text, whatever its name says.")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise DocumentError(
                f"The text is not in UTF-8 (byte {error.start} is not valid UTF-8) and its encoding is unknown: "
                "save it as UTF-8 and upload it again."
            ) from None
    sample = text[:65536]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if sample and controls / len(sample) > 0.01:
        raise DocumentError("This is a binary file, not text, whatever its name says.")
    return text


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown_blocks(text: str, page: int | None = None) -> Iterator[Block]:
    heading = ""
    for paragraph in _paragraphs(text):
        lines = paragraph.split("\n")
        body: list[str] = []
        for line in lines:
            match = _MD_HEADING.match(line)
            if match:
                if body:
                    yield Block("\n".join(body), page, heading)
                    body = []
                heading = match.group(2)
                yield Block(heading, page, heading, is_heading=True)
            else:
                body.append(line)
        if body:
            yield Block("\n".join(body), page, heading)


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "template", "noscript", "head"}
    BREAKS = {"p", "div", "li", "br", "tr", "section", "article", "blockquote", "pre", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BREAKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BREAKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_text(text: str) -> str:
    """Markdown-ish text of an HTML page: headings as ``#`` lines, blocks as paragraphs, no scripts."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _pdf_blocks(data: bytes, limits: Limits, on_page: Callable[[int, int], None],
                should_stop: Callable[[], bool]) -> Iterator[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("This PDF is encrypted: save a copy without a password and upload that.")
        size = reader.trailer.get("/Size", 0)
        if int(size) > limits.max_objects:
            raise DocumentError(f"This PDF has {int(size)} objects, more than the {limits.max_objects} "
                                "Atelier reads (a PDF bomb?).")
        total = len(reader.pages)
        if total > limits.max_pages:
            raise DocumentError(f"This PDF has {total} pages, more than the {limits.max_pages} Atelier reads.")
        chars = 0
        any_text = False
        for number, page in enumerate(reader.pages, start=1):
            if should_stop():
                return
            text = page.extract_text() or ""
            chars += len(text)
            if chars > limits.max_chars:
                raise DocumentError(f"This PDF holds more than {limits.max_chars} characters of text.")
            any_text = any_text or bool(text.strip())
            yield from _markdown_blocks(text, page=number)
            on_page(number, total)
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise DocumentError(f"This is not a readable PDF ({type(error).__name__}).") from None
    if not any_text:
        raise DocumentError("This PDF has no text layer (a scan?): run it through OCR first.")


def _docx_blocks(data: bytes, limits: Limits) -> Iterator[Block]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise DocumentError("This is not a readable .docx file (it is not a zip archive).") from None
    if unzipped > limits.max_unzipped_bytes:
        raise DocumentError(f"This .docx unpacks to {unzipped} bytes, more than Atelier reads (a zip bomb?).")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises several kinds for a broken package
        raise DocumentError(f"This is not a readable .docx file ({type(error).__name__}).") from None
    heading = ""
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            heading = text
            yield Block(text, None, heading, is_heading=True)
        else:
            yield Block(text, None, heading)


def parse(
    *,
    filename: str,
    data: bytes,
    limits: Limits | None = None,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Block]:
    """The blocks of ``data`` read as ``filename``'s kind; DocumentError with the reason when unusable.

    ``on_page(done, total)`` reports progress (PDF pages; other kinds: one page);
    ``should_stop()`` true ends early with the blocks so far (the caller discards them).
    """
    limits = limits or Limits()
    report = on_page or (lambda done, total: None)
    stop = should_stop or (lambda: False)
    kind = kind_for(filename)
    if kind == "pdf":
        blocks = list(_pdf_blocks(data, limits, report, stop))
    else:
        if kind == "docx":
            blocks = list(_docx_blocks(data, limits))
        else:
            text = decode_text(data)
            if len(text) > limits.max_chars:
                raise DocumentError(f"The file holds more than {limits.max_chars} characters of text.")
            blocks = list(_markdown_blocks(html_text(text) if kind == "html" else text))
        report(1, 1)
    if not blocks and not stop():
        raise DocumentError("The file holds no text.")
    return blocks
