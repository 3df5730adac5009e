"""Small value helpers the write paths rely on: time-ordered ids, the value hygiene (feedbackhub.values),
the JSON encoder."""

import json
import re
import time

import pytest

from assessments.models import new_assessment_id
from feedbackhub import values
from feedbackhub.encoders import FloatPreservingJSONEncoder
from traces.models import new_trace_id, time_ordered_hex


def test_new_ids_keep_their_format_and_sort_by_creation_time():
    first = [new_trace_id(), new_assessment_id()]
    time.sleep(0.002)
    second = [new_trace_id(), new_assessment_id()]
    assert all(re.fullmatch(r"tr-[0-9a-f]{32}", trace_id) for trace_id in (first[0], second[0]))
    assert all(re.fullmatch(r"a-[0-9a-f]{32}", assessment_id) for assessment_id in (first[1], second[1]))
    assert first[0] < second[0] and first[1] < second[1]
    assert time_ordered_hex(0x0123456789AB).startswith("0123456789ab")
    assert len({time_ordered_hex(1) for _ in range(100)}) == 100  # 80 random bits after the clock


INF = float("inf")


@pytest.mark.parametrize(
    "value, place",
    [
        ("plain", None),
        ({"k": "v", "n": [1, 2.5, None, True]}, None),
        (["\\u0000 written out, no NUL"], None),  # the encoder's text holds \\u0000: the walk decides
        ("\U0001f600 paired surrogates make one character", None),
        (b"bytes are not JSON", None),
        ("a\x00b", ("", values.NUL_PROBLEM)),
        ({"k": ["x", {"deep": "y\x00"}]}, ("k[1].deep", values.NUL_PROBLEM)),
        ({"key\x00": 1}, ("{key\ufffd}", values.NUL_PROBLEM)),
        ({"both": ["\\u0000", "real\x00"]}, ("both[1]", values.NUL_PROBLEM)),
        ("lone \ud800", ("", values.SURROGATE_PROBLEM)),
        ({"a": [{"b": "\udfff"}]}, ("a[0].b", values.SURROGATE_PROBLEM)),
        ({"\udc00": 1}, ("{\ufffd}", values.SURROGATE_PROBLEM)),
        (INF, ("", values.NUMBER_PROBLEM)),
        ({"scores": [1.0, -INF]}, ("scores[1]", values.NUMBER_PROBLEM)),
        ([float("nan")], ("[0]", values.NUMBER_PROBLEM)),
        (json.loads('{"x": 1e400}'), ("x", values.NUMBER_PROBLEM)),
        (10**400, ("", values.NUMBER_PROBLEM)),
        ({"n": [-(10**309)]}, ("n[0]", values.NUMBER_PROBLEM)),
        ({"n": [10**308, 2**1023]}, None),
    ],
)
def test_problem_names_the_first_hostile_place(value, place):
    assert values.problem(value) == place


def test_scrubbed_replaces_only_when_needed_and_lists_the_places():
    clean = {"a": ["b", {"c": 1.5}]}
    assert values.scrubbed(clean) is clean
    places = []
    assert values.scrubbed({"k\x00": ["v\ud800", 1, INF, -INF, float("nan")]}, places) == {
        "k\ufffd": ["v\ufffd", 1, "Infinity", "-Infinity", "NaN"]
    }
    assert places == ["k\ufffd", "k\ufffd[0]", "k\ufffd[2]", "k\ufffd[3]", "k\ufffd[4]"]


def test_scrubbed_span_marks_what_it_replaced():
    span = {"name": "n", "inputs": {"q": "ok"}, "attributes": {"n": 1}, "events": []}
    assert values.scrubbed_span(span) is span
    marked = values.scrubbed_span({**span, "outputs": [INF], "attributes": {"n": "\x00"}})
    assert marked["outputs"] == ["Infinity"]
    assert marked["attributes"] == {"n": "\ufffd", values.MARK_ATTRIBUTE: ["outputs[0]", "attributes.n"]}


@pytest.mark.parametrize(
    "text, value",
    [
        (
            '{"a": "\\ud800", "b": 1e400, "c": "\\ud83d\\ude00", "d": -Infinity, "e": NaN}',
            {"a": "\ufffd", "b": "Infinity", "c": "\U0001f600", "d": "-Infinity", "e": "NaN"},
        ),
        ('{"\\udc00": [1e999]}', {"\ufffd": ["Infinity"]}),
        ('["a\\u0000b"]', ["a\ufffdb"]),
        ("[1%s, -1%s]" % ("0" * 400, "0" * 400), ["Infinity", "-Infinity"]),  # jsonb's text of 1e400
        ('{"plain": "NaN as text", "n": 1e300}', {"plain": "NaN as text", "n": 1e300}),
    ],
)
def test_stored_json_reads_back_without_hostile_values(text, value):
    assert json.loads(text, cls=values.StoredJSONDecoder) == value


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


def test_parsed_json_reads_json_text_and_leaves_the_rest():
    from feedbackhub.values import parsed_json

    assert parsed_json('{"a": [1, 2]}') == {"a": [1, 2]}
    assert parsed_json("42") == 42 and parsed_json("true") is True
    assert parsed_json("not json") == "not json" and parsed_json(None) is None and parsed_json(7) == 7
    # documents only (OpenTelemetry attributes): plain strings that happen to be JSON stay text
    assert parsed_json("42", documents_only=True) == "42"
    assert parsed_json('"CHAT_MODEL"', documents_only=True) == "CHAT_MODEL"
    assert parsed_json("[1, 2", documents_only=True) == "[1, 2"
