"""Activity fixtures: the usage app's per-process time zones start clean (test databases reuse team ids)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_time_zones():
    from webapp.usage.selectors import _time_zones

    _time_zones.clear()
    yield
    _time_zones.clear()
