from __future__ import annotations

import pytest

from webapp.chat.markdown import render_markdown


def test_markdown_renders_emphasis_and_links():
    html = render_markdown("Hello **team**, see [docs](https://example.com/docs)")
    assert "<strong>team</strong>" in html
    assert '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">docs</a>' in html




def _live_markup(html: str) -> str:
    """Only the markup inside real tags (text content, where escaped HTML lives, is dropped)."""
    import re

    return " ".join(re.findall(r"<[^>]*>", html))


@pytest.mark.parametrize("attack", [
    '<img src=x onerror="alert(1)">',
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    '<a href="#" hx-get="/evil" data-hx-trigger="load">x</a>',
    '<p onmouseover="alert(1)">hover</p>',
])
def test_no_tag_in_the_output_carries_script_handlers_or_htmx(attack):
    markup = _live_markup(render_markdown(attack)).lower()
    for forbidden in ("<script", "<img", "onerror", "onmouseover", "javascript:", "hx-", "data-hx"):
        assert forbidden not in markup


def test_code_blocks_are_highlighted_and_escaped():
    html = render_markdown("```python\ndef f():\n    return '<b>'\n```")
    assert '<span class="k">def</span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_unknown_code_language_is_escaped_plain_code():
    html = render_markdown("```nolang\n<i>x</i>\n```")
    assert "&lt;i&gt;" in html and "<i>" not in html
