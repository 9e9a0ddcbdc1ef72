"""Request bodies -> engine requests: the mapping of OpenAI's parameters, with no database."""
from __future__ import annotations

import pytest

from webapp.api.errors import ApiError
from webapp.api.params import chat_spec, completion_spec, image_spec

MODEL = "smollm2-135m-instruct"


def _chat(**extra):
    return chat_spec({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **extra})


def test_temperature_zero_decodes_greedily_and_the_default_samples():
    assert _chat(temperature=0).params["strategy"] == "greedy"
    sampled = _chat().params
    assert sampled["strategy"] == "sample" and sampled["temperature"] == 1.0 and sampled["top_k"] == 0


def test_num_beams_above_one_means_beam_search():
    params = _chat(num_beams=3).params
    assert params["strategy"] == "beam" and params["num_beams"] == 3


def test_max_completion_tokens_wins_over_max_tokens():
    spec = _chat(max_tokens=5, max_completion_tokens=7)
    assert spec.params["max_new_tokens"] == 7 and spec.max_tokens_param == "max_completion_tokens"


def test_a_stop_string_becomes_a_list():
    assert _chat(stop="END").params["stop"] == ["END"]


def test_text_parts_are_joined_and_developer_is_a_system_message():
    spec = chat_spec({"model": MODEL, "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]},
    ]})
    assert spec.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert spec.prompt_text == "Hello"


def test_include_usage_needs_stream():
    assert _chat(stream=True, stream_options={"include_usage": True}).include_usage
    with pytest.raises(ApiError) as caught:
        _chat(stream_options={"include_usage": True})
    assert caught.value.param == "stream_options"


def test_an_image_model_is_not_a_chat_model():
    with pytest.raises(ApiError) as caught:
        chat_spec({"model": "atelier-shapes", "messages": [{"role": "user", "content": "Hi"}]})
    assert caught.value.status == 404 and caught.value.code == "model_not_found"


def test_a_completion_sends_the_prompt_as_one_user_turn():
    spec = completion_spec({"model": MODEL, "prompt": ["Once upon"], "max_tokens": 4})
    assert spec.messages == [{"role": "user", "content": "Once upon"}] and spec.params["max_new_tokens"] == 4


def test_a_batch_of_prompts_is_refused_by_name():
    with pytest.raises(ApiError) as caught:
        completion_spec({"model": MODEL, "prompt": ["a", "b"]})
    assert caught.value.param == "prompt" and caught.value.code == "unsupported_parameter"


def test_an_image_size_and_extensions_reach_the_engine_request():
    spec = image_spec({"prompt": "a red circle", "size": "48x32", "n": 3, "steps": 7, "seed": 9,
                       "scheduler": "ddim", "response_format": "b64_json"})
    request = spec.request
    assert (request.width, request.height, request.num_images, request.steps, request.seed) == (48, 32, 3, 7, 9)
    assert request.scheduler == "ddim" and spec.response_format == "b64_json"


def test_an_image_request_defaults_to_the_default_model_and_url():
    spec = image_spec({"prompt": "a red circle"})
    assert spec.request.model == "atelier-shapes" and spec.response_format == "url"


def test_an_image_size_out_of_the_models_range_names_size():
    with pytest.raises(ApiError) as caught:
        image_spec({"prompt": "a red circle", "size": "1024x1024"})
    assert caught.value.param == "size" and "between" in caught.value.message
