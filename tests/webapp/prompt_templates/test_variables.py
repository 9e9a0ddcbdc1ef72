"""The variable language, without Django."""
from __future__ import annotations

import pytest

from webapp.prompt_templates.variables import (
    MAX_BODY_CHARS,
    MAX_VARIABLES,
    TemplateSyntaxError,
    VariableValueError,
    parse_body,
    render_body,
)

BUILTINS = {"date": "2026-11-29", "user": "bob", "project": "Launch"}


def _render(body: str, image: bool = False, prompt: str | None = None, **values: str) -> str:
    return render_body(parse_body(body, image=image), values=values, builtins=BUILTINS, prompt=prompt)


def test_a_plain_variable_is_required_one_line_text():
    (variable,) = parse_body("About {{topic}}.").variables
    assert (variable.name, variable.type, variable.required) == ("topic", "text", True)
    assert _render("About {{topic}}.", topic="the sea") == "About the sea."


def test_a_missing_required_value_names_the_variable():
    with pytest.raises(VariableValueError) as exc:
        _render("About {{topic}} in {{place}}.", topic="x")
    assert exc.value.errors == {"place": "is required"}


def test_text_is_one_line_and_textarea_keeps_lines():
    with pytest.raises(VariableValueError) as exc:
        _render("{{title}}", title="a\nb")
    assert "one line" in exc.value.errors["title"]
    assert _render("Notes:\n{{notes|textarea}}", notes="a\nb") == "Notes:\na\nb"


def test_select_offers_its_options_and_takes_its_default():
    body = "A {{tone|select:formal,casual|default:formal}} note"
    (variable,) = parse_body(body).variables
    assert variable.options == ("formal", "casual") and variable.default == "formal" and not variable.required
    assert _render(body) == "A formal note"
    assert _render(body, tone="casual") == "A casual note"
    with pytest.raises(VariableValueError) as exc:
        _render(body, tone="rude")
    assert "formal, casual" in exc.value.errors["tone"]


def test_number_checks_its_range():
    body = "Write {{count|number:1..10|default:3}} lines"
    (variable,) = parse_body(body).variables
    assert (str(variable.minimum), str(variable.maximum)) == ("1", "10")
    assert _render(body) == "Write 3 lines"
    assert _render(body, count="7") == "Write 7 lines"
    for bad, message in (("11", "from 1 to 10"), ("many", "a number"), ("0", "from 1 to 10")):
        with pytest.raises(VariableValueError) as exc:
            _render(body, count=bad)
        assert message in exc.value.errors["count"]


def test_number_without_a_range_takes_any_number():
    assert _render("{{x|number}}", x="-2.50") == "-2.5"


def test_builtins_are_filled_in_and_not_asked_for():
    parsed = parse_body("{{user}} in {{project}} on {{date}}")
    assert parsed.variables == () and parsed.builtins == ("user", "project", "date")
    assert _render("{{user}} in {{project}} on {{date}}") == "bob in Launch on 2026-11-29"


def test_a_variable_used_twice_is_asked_once_and_typed_where_it_is_declared():
    parsed = parse_body("{{tone}} and {{tone|select:a,b|default:b}} again {{tone}}")
    assert [v.name for v in parsed.variables] == ["tone"] and parsed.variables[0].type == "select"
    assert _render("{{tone}} and {{tone|select:a,b|default:b}}") == "b and b"


def test_image_prompt_slot_takes_the_users_text():
    body = "{prompt}, watercolour, {{mood|select:calm,wild|default:calm}}"
    assert parse_body(body, image=True).has_prompt_slot
    assert _render(body, image=True, prompt="a red circle") == "a red circle, watercolour, calm"
    with pytest.raises(VariableValueError) as exc:
        _render(body, image=True, prompt=" ")
    assert exc.value.errors == {"prompt": "is required"}


def test_an_image_style_without_the_slot_goes_after_the_prompt():
    assert _render("watercolour", image=True, prompt="a red circle") == "a red circle, watercolour"


def test_a_chat_body_keeps_a_single_brace_prompt_as_text():
    assert not parse_body("{prompt}").has_prompt_slot
    assert _render("say {prompt}") == "say {prompt}"


@pytest.mark.parametrize(
    ("body", "position", "reason"),
    [
        ("Hello {{name", (1, 7), "never closed"),
        ("a\nb {{x|colour}}", (2, 3), "unknown type 'colour'"),
        ("{{}}", (1, 1), "needs a name"),
        ("{{two words}}", (1, 1), "is not a variable name"),
        ("{{n|number:1..10|default:11}}", (1, 1), "default '11' must be from 1 to 10"),
        ("{{n|number:5..1}}", (1, 1), "is empty"),
        ("{{n|number:1-10}}", (1, 1), "number:1..10"),
        ("{{n|number|default:lots}}", (1, 1), "must be a number"),
        ("x {{t|select:a,b|default:c}}", (1, 3), "not among the options"),
        ("{{t|select:}}", (1, 1), "needs options"),
        ("{{t|select:a,a}}", (1, 1), "listed twice"),
        ("{{t|textarea|text}}", (1, 1), "given twice"),
        ("{{date|textarea}}", (1, 1), "takes no type"),
        ("{{a|select:x|default:x}} {{a|select:x,y}}", (1, 26), "only one occurrence"),
    ],
)
def test_syntax_errors_name_the_position(body, position, reason):
    with pytest.raises(TemplateSyntaxError) as exc:
        parse_body(body)
    assert (exc.value.line, exc.value.column) == position
    assert reason in str(exc.value)
    assert str(exc.value).startswith(f"line {position[0]}, column {position[1]}:")


def test_bodies_and_variable_counts_are_bounded():
    with pytest.raises(TemplateSyntaxError, match="at most 20000 characters"):
        parse_body("x" * (MAX_BODY_CHARS + 1))
    parse_body(" ".join(f"{{{{v{i}}}}}" for i in range(MAX_VARIABLES)))
    with pytest.raises(TemplateSyntaxError, match="at most 50 variables"):
        parse_body(" ".join(f"{{{{v{i}}}}}" for i in range(MAX_VARIABLES + 1)))


def test_values_are_bounded():
    with pytest.raises(VariableValueError, match="at most 2000"):
        _render("{{x}}", x="y" * 2001)
