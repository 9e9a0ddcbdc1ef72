"""The variable language of template bodies: parse ``{{name|type|default:x}}``, then render.

Plain Python (no Django), so it is tested on its own. Syntax:

- ``{{name}}``: a required one-line text; ``{{name|default:x}}`` makes it optional.
- ``{{name|textarea}}``: several lines; ``{{name|text}}`` spells out the default type.
- ``{{tone|select:formal,casual|default:formal}}``: one of the options.
- ``{{count|number:1..10|default:3}}``: a number in a closed range (``number`` alone: any number).
- Built-ins ``{{date}}``, ``{{user}}``, ``{{project}}`` are filled in, never asked for.
- In image templates, ``{prompt}`` is the user's own text (A1111 and InvokeAI styles).

A variable may appear several times; only one occurrence may carry a type or default.
Errors name the line and column (both 1-based) where the bad variable starts.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import NoReturn

MAX_BODY_CHARS = 20_000
MAX_VARIABLES = 50
MAX_NAME_CHARS = 40
MAX_OPTIONS = 50
MAX_OPTION_CHARS = 100
MAX_DEFAULT_CHARS = 1000
MAX_TEXT_VALUE_CHARS = 2000
MAX_TEXTAREA_VALUE_CHARS = 20_000

BUILTINS = ("date", "user", "project")
TYPES = ("text", "textarea", "select", "number")
PROMPT_SLOT = "{prompt}"

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z", re.IGNORECASE)
_RANGE = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*\Z")
_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class TemplateSyntaxError(ValueError):
    """A body that does not parse; ``position`` is the 0-based offset of the bad variable."""

    def __init__(self, message: str, *, body: str, position: int) -> None:
        self.position = position
        self.line = body.count("\n", 0, position) + 1
        self.column = position - (body.rfind("\n", 0, position) + 1) + 1
        self.reason = message
        super().__init__(f"line {self.line}, column {self.column}: {message}")


class VariableValueError(ValueError):
    """Values that don't fit the variables: ``errors`` maps each variable's name to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


@dataclass(frozen=True)
class Variable:
    name: str
    type: str = "text"
    options: tuple[str, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    default: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "type": self.type, "options": list(self.options), "required": self.required,
            "minimum": _number_text(self.minimum), "maximum": _number_text(self.maximum), "default": self.default,
        }

    def clean(self, raw: str | None) -> str:
        """The value to put in the text, or VariableValueError-style message as ValueError."""
        value = (raw if raw is not None else "").strip() if self.type != "textarea" else (raw or "")
        if not value.strip():
            if self.default is not None:
                return self.default
            raise ValueError("is required")
        if self.type == "select" and value not in self.options:
            raise ValueError(f"must be one of {', '.join(self.options)}")
        if self.type == "number":
            return _number_text(_check_number(value, self.minimum, self.maximum)) or ""
        limit = MAX_TEXTAREA_VALUE_CHARS if self.type == "textarea" else MAX_TEXT_VALUE_CHARS
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        if self.type == "text" and "\n" in value:
            raise ValueError("must be one line")
        return value


@dataclass(frozen=True)
class ParsedBody:
    body: str
    variables: tuple[Variable, ...] = ()
    builtins: tuple[str, ...] = ()
    has_prompt_slot: bool = False
    # (start, end, name) of every {{...}} occurrence, in order.
    spans: tuple[tuple[int, int, str], ...] = field(default=(), repr=False)

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


def _number_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value.normalize())


def _check_number(text: str, minimum: Decimal | None, maximum: Decimal | None) -> Decimal:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a number")
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        raise ValueError(f"must be from {_number_text(minimum)} to {_number_text(maximum)}")
    return number


def _parse_token(inner: str, *, fail: Callable[[str], NoReturn]) -> Variable | str:
    """One ``{{...}}``: a Variable, or the name of a built-in."""
    parts = [part.strip() for part in inner.split("|")]
    name = parts[0]
    if not name:
        fail("a variable needs a name, as in {{topic}}")
    if not _NAME.match(name) or len(name) > MAX_NAME_CHARS:
        fail(f"{name!r} is not a variable name (letters, digits and _, at most {MAX_NAME_CHARS})")
    if name in BUILTINS:
        if len(parts) > 1:
            fail(f"the built-in {{{{{name}}}}} takes no type or default")
        return name
    kind, default = "text", None
    options: tuple[str, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    seen: set[str] = set()
    for part in parts[1:]:
        key, _, arg = part.partition(":")
        key = key.strip()
        if key in seen or (key in TYPES and seen & set(TYPES)):
            fail(f"{name}: {key!r} given twice")
        seen.add(key)
        if key == "default":
            default = arg.strip()
            if len(default) > MAX_DEFAULT_CHARS:
                fail(f"{name}: the default must be at most {MAX_DEFAULT_CHARS} characters")
        elif key in ("text", "textarea"):
            kind = key
            if arg:
                fail(f"{name}: {key} takes no argument")
        elif key == "select":
            kind = "select"
            options = tuple(option.strip() for option in arg.split(",") if option.strip())
            if not options:
                fail(f"{name}: select needs options, as in select:a,b")
            if len(options) > MAX_OPTIONS or any(len(o) > MAX_OPTION_CHARS for o in options):
                fail(f"{name}: at most {MAX_OPTIONS} options of {MAX_OPTION_CHARS} characters")
            if len(set(options)) != len(options):
                fail(f"{name}: an option is listed twice")
        elif key == "number":
            kind = "number"
            if arg.strip():
                match = _RANGE.match(arg)
                if not match:
                    fail(f"{name}: a number range is written number:1..10")
                minimum, maximum = Decimal(match.group(1)), Decimal(match.group(2))
                if minimum > maximum:
                    fail(f"{name}: the range {arg.strip()} is empty")
        else:
            fail(f"{name}: unknown type {key!r} (known: {', '.join(TYPES)}, and default)")
    variable = Variable(name=name, type=kind, options=options, minimum=minimum, maximum=maximum, default=default)
    if default is not None:
        if kind == "select" and default not in options:
            fail(f"{name}: the default {default!r} is not among the options")
        if kind == "number":
            try:
                _check_number(default, minimum, maximum)
            except ValueError as exc:
                fail(f"{name}: the default {default!r} {exc}")
        if kind == "text" and "\n" in default:
            fail(f"{name}: a text default must be one line")
    return variable


def parse_body(body: str, *, image: bool = False) -> ParsedBody:
    """Parse a template body; raise TemplateSyntaxError naming the position of the first problem."""
    if len(body) > MAX_BODY_CHARS:
        raise TemplateSyntaxError(f"the body must be at most {MAX_BODY_CHARS} characters", body=body, position=MAX_BODY_CHARS)
    variables: dict[str, Variable] = {}
    typed: set[str] = set()
    builtins: list[str] = []
    spans: list[tuple[int, int, str]] = []
    position = 0
    while True:
        start = body.find("{{", position)
        if start == -1:
            break
        match = _TOKEN.match(body, start)
        if match is None:
            raise TemplateSyntaxError("'{{' is never closed with '}}'", body=body, position=start)
        inner = match.group(1)
        if "{{" in inner:
            raise TemplateSyntaxError("'{{' is never closed with '}}'", body=body, position=start)

        def fail(message: str, _start: int = start) -> NoReturn:
            raise TemplateSyntaxError(message, body=body, position=_start)

        parsed = _parse_token(inner, fail=fail)
        if isinstance(parsed, str):
            if parsed not in builtins:
                builtins.append(parsed)
            spans.append((start, match.end(), parsed))
        else:
            has_spec = "|" in inner
            known = variables.get(parsed.name)
            if known is None:
                if len(variables) >= MAX_VARIABLES:
                    fail(f"a template has at most {MAX_VARIABLES} variables")
                variables[parsed.name] = parsed
            elif has_spec:
                if parsed.name in typed:
                    fail(f"{parsed.name}: only one occurrence may give a type or default")
                variables[parsed.name] = parsed
            if has_spec:
                typed.add(parsed.name)
            spans.append((start, match.end(), parsed.name))
        position = match.end()
    return ParsedBody(
        body=body,
        variables=tuple(variables.values()),
        builtins=tuple(builtins),
        has_prompt_slot=image and PROMPT_SLOT in body,
        spans=tuple(spans),
    )


def render_body(
    parsed: ParsedBody, *, values: dict[str, str], builtins: dict[str, str], prompt: str | None = None
) -> str:
    """The body with every variable replaced by its checked value.

    ``values`` maps variable names to the user's raw input (missing = empty);
    ``builtins`` gives ``date``, ``user`` and ``project``. For image
    templates, ``prompt`` fills ``{prompt}``; a body without the slot gets
    the prompt in front of it. Raises VariableValueError naming every bad variable.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for variable in parsed.variables:
        try:
            cleaned[variable.name] = variable.clean(values.get(variable.name))
        except ValueError as exc:
            errors[variable.name] = str(exc)
    if parsed.has_prompt_slot and prompt is not None and not prompt.strip():
        errors["prompt"] = "is required"
    if errors:
        raise VariableValueError(errors)
    pieces: list[str] = []
    position = 0
    for start, end, name in parsed.spans:
        pieces.append(parsed.body[position:start])
        pieces.append(builtins.get(name, "") if name in BUILTINS else cleaned[name])
        position = end
    pieces.append(parsed.body[position:])
    text = "".join(pieces)
    if prompt is not None:
        if parsed.has_prompt_slot:
            text = text.replace(PROMPT_SLOT, prompt.strip())
        elif prompt.strip():
            text = f"{prompt.strip()}, {text}" if text.strip() else prompt.strip()
    return text
