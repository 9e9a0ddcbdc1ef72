"""Markdown to safe HTML, on the server: markdown-it-py, pygments, then nh3.

Raw HTML in the source is escaped by markdown-it (``html`` off), and nh3
then keeps only an allowlist of tags and attributes, so model output and user
text can never carry script, event handlers, ``javascript:`` URLs or htmx
attributes (``hx-*``, ``data-hx-*``) into the page.
"""
from __future__ import annotations

from functools import cache

import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "pre": {"class"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, attrs: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code and wraps it itself
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


@cache
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> str:
    """Sanitized HTML for ``text``."""
    html = _parser().render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
