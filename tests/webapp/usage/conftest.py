"""Usage fixtures. The tiny in-code chat model (``tiny_model``) is the suite's (tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_time_zones():
    """Each process keeps a team's time zone for a minute; test databases reuse team ids, so start clean."""
    from webapp.usage.selectors import _time_zones

    _time_zones.clear()
    yield
    _time_zones.clear()
