"""Small value helpers the write paths rely on: time-ordered ids, the NUL check, the JSON encoder."""

import json
import re
import time

import pytest

from assessments.models import new_assessment_id
from feedbackhub.encoders import FloatPreservingJSONEncoder
from traces.models import new_trace_id, time_ordered_hex
from traces.otlp import without_nul
from traces.serializers import find_nul


def test_new_ids_keep_their_format_and_sort_by_creation_time():
    first = [new_trace_id(), new_assessment_id()]
    time.sleep(0.002)
    second = [new_trace_id(), new_assessment_id()]
    assert all(re.fullmatch(r"tr-[0-9a-f]{32}", trace_id) for trace_id in (first[0], second[0]))
    assert all(re.fullmatch(r"a-[0-9a-f]{32}", assessment_id) for assessment_id in (first[1], second[1]))
    assert first[0] < second[0] and first[1] < second[1]
    assert time_ordered_hex(0x0123456789AB).startswith("0123456789ab")
    assert len({time_ordered_hex(1) for _ in range(100)}) == 100  # 80 random bits after the clock


@pytest.mark.parametrize(
    "value, has_nul",
    [
        ("plain", False),
        ("a\x00b", True),
        ({"k": "v", "n": [1, 2.5, None, True]}, False),
        ({"k": ["x", {"deep": "y\x00"}]}, True),
        ({"key\x00": 1}, True),
        (["\\u0000 written out, no NUL"], False),  # the encoder's text holds \\u0000: the walk decides
        ({"both": ["\\u0000", "real\x00"]}, True),
        (b"bytes are not JSON", False),
    ],
)
def test_find_nul_answers_like_a_walk(value, has_nul):
    assert find_nul(value) is has_nul


def test_without_nul_replaces_only_when_needed():
    clean = {"a": ["b", {"c": 1}]}
    assert without_nul(clean) is clean
    assert without_nul({"k\x00": ["v\x00", 1]}) == {"k\ufffd": ["v\ufffd", 1]}


@pytest.mark.parametrize(
    "value, text",
    [
        ({"x": 1.5, "s": "e+ inside a string"}, '{"x": 1.5, "s": "e+ inside a string"}'),
        ({"big": 1e16}, '{"big": 10000000000000000.0}'),
        ([1e-07, 2, "NaN as text"], '[1e-07, 2, "NaN as text"]'),
        ("just text", '"just text"'),
    ],
)
def test_float_preserving_encoder_gives_the_pure_path_text(value, text):
    assert json.dumps(value, cls=FloatPreservingJSONEncoder) == text


def test_float_preserving_encoder_refuses_nan():
    with pytest.raises(ValueError):
        json.dumps({"x": float("nan")}, cls=FloatPreservingJSONEncoder)
