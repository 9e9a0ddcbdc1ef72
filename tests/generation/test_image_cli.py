"""``python -m generation image``: JSON lines, PNG files, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.__main__ import main as generation_main
from generation.image import read_png_metadata
from tests.generation.test_image_engine import tiny_sd, tiny_sd_dir  # noqa: F401  (fixtures)


def test_json_mode_prints_one_object_per_step_then_the_files(
    tiny_sd: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["image", "a red star", "--model", tiny_sd, "--steps", "3", "--seed", "9", "--num-images", "2"]
    code = generation_main([*argv, "--scheduler", "euler", "--out", str(tmp_path), "--json"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert lines[:3] == [{"event": "step", "step": i, "total": 3} for i in (1, 2, 3)]
    done = lines[-1]
    assert done["event"] == "done" and len(done["files"]) == 2
    assert done["params"]["seed"] == 9 and done["params"]["scheduler"] == "euler"
    meta = read_png_metadata(done["files"][1])
    assert meta["params"]["batch_index"] == 1 and meta["params"]["prompt"] == "a red star"
    assert "Seed: 9" in meta["parameters"]


def test_plain_mode_prints_the_file_paths(
    tiny_sd: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = generation_main(["image", "a red star", "--model", tiny_sd, "--seed", "1", "--out", str(tmp_path)])

    assert code == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "1-0.png")]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--steps", "0"], "steps"),
        (["--steps", "many"], "--steps"),
        (["--guidance", "99"], "guidance_scale"),
        (["--scheduler", "nope"], "scheduler"),
        (["--width", "33"], "width"),
        (["--num-images", "20"], "num_images"),
        (["--model", "missing"], "model"),
        (["--frobnicate"], "frobnicate"),
    ],
)
def test_a_bad_argument_gets_a_one_line_error_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], mentions: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        sys.exit(generation_main(["image", "a red star", "--out", str(tmp_path), *args]))

    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and mentions in err


def test_a_missing_out_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        generation_main(["image", "a red star"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_module_entry_point_exits_2_on_a_bad_argument(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "generation", "image", "a red star", "--steps", "999", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "steps" in done.stderr
