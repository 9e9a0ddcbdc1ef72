"""How the template page shows what a version made, without importing the apps that made it.

Chat and studio sit above this app. Each registers, in its ``AppConfig.ready``,
a function that turns output ids of its kind into ``OutputView``s (a label, a
link, thumbnails); the template page asks the registry. Imports stay downward.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputView:
    label: str
    url: str
    thumbnails: tuple[str, ...] = field(default=())
    status: str = ""


Describer = Callable[[int, Iterable[int]], dict[int, OutputView]]
_describers: dict[str, Describer] = {}


def register_output_kind(kind: str, describe: Describer) -> None:
    """``describe(project_id, ids)`` returns a view for each id it still finds in that project."""
    _describers[kind] = describe


def describe_outputs(kind: str, *, project_id: int, ids: Iterable[int]) -> dict[int, OutputView]:
    describe = _describers.get(kind)
    return describe(project_id, list(ids)) if describe else {}
