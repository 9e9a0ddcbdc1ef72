from __future__ import annotations

import json
import signal

import pytest

from generation.__main__ import main as generation_main
from generation.text.cli import main
from generation.text.testing import build_tiny_chat_model, tiny_model_entry

TINY = "tiny-cli"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-cli"), seed=1)


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tiny_folder):
    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY, tiny_folder))
    monkeypatch.setenv("ATELIER_TEXT_DTYPE", "float32")


def test_json_output_is_one_object_per_delta_then_a_final_one(capsys):
    status = main(["hello", "--model", TINY, "--max-new-tokens", "12", "--json"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *deltas, final = lines
    assert status == 0
    assert final["done"] is True
    assert "".join(d["text"] for d in deltas) == final["text"]
    assert final["completion_tokens"] == 12
    assert final["finish_reason"] == "length"
    assert {"prompt_tokens", "time_to_first_token", "tokens_per_second", "params"} <= set(final)


def test_plain_output_streams_the_text(capsys):
    main(["hello", "--model", TINY, "--max-new-tokens", "12", "--json"])
    expected = json.loads(capsys.readouterr().out.splitlines()[-1])["text"]

    status = generation_main(["chat", "hello", "--model", TINY, "--max-new-tokens", "12"])

    assert status == 0
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["hi", "--temperature", "5"], "--temperature"),
        (["hi", "--top-k", "many"], "--top-k"),
        (["hi", "--strategy", "nucleus"], "--strategy"),
        (["hi", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["hi", "--model", "no-such-model"], "--model"),
        (["", "--max-new-tokens", "3"], "PROMPT"),
    ],
)
def test_bad_argument_gives_a_one_line_error_and_exit_status_2(capsys, argv, named):
    status = main([*argv, "--model", TINY] if "--model" not in argv else argv)

    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error:")
    assert named in err


def test_ctrl_c_cancels_and_still_prints_the_final_record(capsys):
    from generation.text import load_text_model
    from generation.text.engine import text_engine

    text_engine(TINY)  # loaded and warmed up first: only the request's own forward passes count
    forwards = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job

    def press_ctrl_c(*args):
        forwards.append(1)
        if len(forwards) == 3:
            signal.raise_signal(signal.SIGINT)

    hook = load_text_model(TINY).model.register_forward_hook(press_ctrl_c)
    try:
        status = main(["hello", "--model", TINY, "--max-new-tokens", "50", "--json"])
    finally:
        hook.remove()

    final = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert status == 0
    assert (final["finish_reason"], final["completion_tokens"]) == ("cancelled", 3)
    assert signal.getsignal(signal.SIGINT) is before  # the CLI puts back whatever handler it found
