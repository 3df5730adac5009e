"""Property-based tests (hypothesis) through the native API, on SQLite and on PostgreSQL:

- what goes in comes out identical: any JSON value, rationale and metadata posted as
  feedback or an expectation reads back equal and of the same types;
- the search endpoint never answers 5xx, whatever the filter and query parameters: a
  filter is either run (200) or refused with a 400 naming `filter` (traces.filters.FilterError).

FEEDBACKHUB_FUZZ_EXAMPLES sets the number of examples per property (default 150).
"""

import json
import math
import os

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedbackhub.encoders import FloatPreservingJSONEncoder

from .factories import make_feedback, make_trace

EXAMPLES = int(os.environ.get("FEEDBACKHUB_FUZZ_EXAMPLES", "150"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Text both databases store: PostgreSQL refuses U+0000 in text and jsonb, so the API refuses it
# everywhere (a 400, tested below); surrogates cannot be UTF-8 encoded at all.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(),  # beyond 64 bits too: JSON numbers have no size limit
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    st.none() | SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
).filter(lambda value: value is not None)


def same(a, b) -> bool:
    """Equal and of the same JSON types all the way down (True is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    return a == b


@pytest.mark.django_db
@PROPERTY
@given(
    value=JSON_VALUES,
    rationale=TEXT,
    metadata=st.dictionaries(TEXT, TEXT, max_size=3),
    kind=st.sampled_from(["feedback", "expectations"]),
)
def test_assessment_values_round_trip_through_the_api(api_client, trace, value, rationale, metadata, kind):
    body = {"name": "fuzzed", "value": value, "rationale": rationale, "metadata": metadata}
    created = api_client.post(f"/api/v1/traces/{trace.trace_id}/{kind}", body, format="json")
    assert created.status_code == 201, created.content
    read = api_client.get(f"/api/v1/assessments/{created.json()['assessment_id']}").json()
    for field, sent in body.items():
        assert same(read[field], sent), (field, sent, read[field])
        assert same(created.json()[field], sent), (field, sent, created.json()[field])


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1e16, -2.5e20, 1.7976931348623157e308, [1e300, {"x": 3e17}]])
def test_large_floats_keep_their_type(api_client, trace, value):
    created = api_client.post(f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "n", "value": value}, format="json")
    read = api_client.get(f"/api/v1/assessments/{created.json()['assessment_id']}").json()
    assert same(read["value"], value)


@PROPERTY
@given(value=JSON_VALUES)
@pytest.mark.django_db
def test_float_preserving_encoder_round_trips_through_the_database(value):
    """The encoder's text, stored and read back by the database itself, loads identical."""
    text = json.dumps(value, cls=FloatPreservingJSONEncoder)
    assert json.loads(text) == value
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT (%s::jsonb)::text", [text])
        else:
            cursor.execute("SELECT json(%s)", [text])
        stored = cursor.fetchone()[0]
    assert same(json.loads(stored), value), (text, stored)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"value": "a\x00b"}, "value"),
        ({"value": {"k\x00": 1}}, "value"),
        ({"value": 1, "rationale": "a\x00"}, "rationale"),
        ({"value": 1, "metadata": {"k": "v\x00"}}, "metadata"),
    ],
)
def test_values_no_database_can_store_are_a_400(api_client, trace, body, field):
    response = api_client.post(f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "n", **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


FILTER_WORDS = st.sampled_from(
    [
        "feedback.user_satisfaction",
        "feedback.`a.b`",
        "expectation.answer",
        "tags.env",
        "tag.env",
        "metadata.user",
        "attributes.status",
        "trace.timestamp_ms",
        "execution_time_ms",
        "span.type",
        "span.name",
        "status",
        "name",
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "LIKE",
        "ILIKE",
        "IN",
        "IS",
        "NULL",
        "'true'",
        "true",
        "false",
        "'%x_'",
        "4",
        "-1.5e3",
        "1e400",
        "99999999999999999999",
        "','",
        ",",
        "'a''b'",
        '"q"',
        "`",
        "'",
        "\\",
        "%",
        "_",
    ]
)
FILTERS = st.one_of(
    st.lists(FILTER_WORDS | TEXT.map(lambda t: t[:4]), min_size=1, max_size=10).map(" ".join),
    st.text(max_size=60),
)
QUERY_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "order_by": st.sampled_from(["request_time DESC", "execution_time_ms ASC", "timestamp_ms", "bogus", ""]),
        "max_results": st.sampled_from(["1", "500", "0", "501", "x", "-1"]),
        "status": st.sampled_from(["OK", "ERROR", "nope"]),
        "start_time": st.sampled_from(["0", "1790000000000", "2026-01-01T00:00:00Z", "yesterday", "9" * 30]),
        "page_token": st.sampled_from(["", "abc", "eyJ4IjogMX0="]) | TEXT,
    },
)


@pytest.fixture
def searchable(experiment, trace):
    """A second trace with feedback of several value types, so filters have something to compare."""
    other = make_trace(experiment, spans=2, tags={"env": "prod"}, metadata={"user": "u1"})
    for name, value in (("user_satisfaction", True), ("rating", 4), ("tone", "friendly"), ("a.b", [1, "x"])):
        make_feedback(other, name=name, value=value)
    return experiment


@pytest.mark.django_db
@PROPERTY
@given(text=FILTERS, extras=QUERY_EXTRAS)
def test_trace_search_never_fails_with_a_server_error(api_client, searchable, text, extras):
    params = {"experiment_id": searchable.pk, "filter": text, **extras}
    response = api_client.get("/api/v1/traces", params)
    assert response.status_code in (200, 400), (params, response.status_code, response.content[:300])
    if response.status_code == 400:
        assert set(response.json()) & {"filter", *extras}, response.content
