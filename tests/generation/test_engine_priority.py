"""The compute threads yield the CPU to the short Python steps around them (``ATELIER_ENGINE_NICE``)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = """
import json, os, threading
import torch
torch.set_num_threads(2)
torch.ones(256, 256) @ torch.ones(256, 256)  # starts torch's native pool threads
from generation.text.engine import compute_threads_yield
lowered = compute_threads_yield()
def nice(tid):
    try:
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None
print(json.dumps({"lowered": {tid: nice(tid) for tid in lowered},
                  "python": [nice(t.native_id) for t in threading.enumerate()]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are set through /proc on Linux")
@pytest.mark.parametrize(("setting", "expected"), [("5", 5), ("0", None)])
def test_native_compute_threads_are_niced_and_python_threads_are_not(setting, expected):
    env = {"ATELIER_ENGINE_NICE": setting, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if expected is None:
        assert result["lowered"] == {}
    else:
        assert result["lowered"], "torch's pool threads should have been lowered"
        assert set(result["lowered"].values()) <= {expected, None}  # None: a thread that ended meanwhile
    assert result["python"] == [0] * len(result["python"])  # the web, claim and publishing threads keep theirs
