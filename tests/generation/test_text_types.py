from __future__ import annotations

import dataclasses
import json

import pytest

from generation.errors import ValidationError
from generation.text import ChatMessage, DecodingParams, TextRequest


def test_decoding_params_survive_a_json_round_trip():
    params = DecodingParams(strategy="sample", temperature=1.2, top_k=0, stop=("\n\n", "User:"), seed=7)

    assert DecodingParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


def test_decoding_params_from_dict_fills_in_defaults():
    assert DecodingParams.from_dict({"strategy": "beam"}) == DecodingParams(strategy="beam")


def test_decoding_params_from_dict_rejects_unknown_keys_by_name():
    with pytest.raises(ValidationError) as caught:
        DecodingParams.from_dict({"temprature": 0.5})

    assert caught.value.field == "temprature"


def test_decoding_params_from_dict_rejects_a_stop_that_is_not_a_list_of_strings():
    with pytest.raises(ValidationError) as caught:
        DecodingParams.from_dict({"stop": [1, 2]})

    assert caught.value.field == "stop"


def test_requests_are_frozen():
    request = TextRequest(messages=(ChatMessage("user", "hi"),))

    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model = "other"  # type: ignore[misc]
