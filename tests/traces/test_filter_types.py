"""The filter language reads assessment types from definitions (traces.filter_types)."""

import pytest

from assessments.definitions import services
from traces.access import Actor

from ..factories import make_feedback, make_trace

pytestmark = pytest.mark.django_db
SYSTEM = Actor.for_system("test")


@pytest.fixture
def rated(experiment):
    up, down, four, tagged = (make_trace(experiment) for _ in range(4))
    make_feedback(up, name="happy", value=True)
    make_feedback(down, name="happy", value=False)
    make_feedback(four, name="rating", value=4.0)
    make_feedback(tagged, name="tags", value=["billing", "refund"])
    make_feedback(four, name="tags", value=["shipping"])
    return {"up": up, "down": down, "four": four, "tagged": tagged}


def found(api_client, experiment, text) -> set[str]:
    response = api_client.get("/api/v1/traces", {"experiment_id": experiment.pk, "filter": text})
    assert response.status_code == 200, response.content
    return {row["trace_id"] for row in response.json()["traces"]}


def define(experiment, name, type_, **constraints):
    services.create_definition(experiment=experiment, actor=SYSTEM, name=name, type=type_, **constraints)


def test_boolean_definition_reads_words_and_digits_as_booleans(api_client, experiment, rated):
    assert found(api_client, experiment, "feedback.happy = 'False'") == set()  # untyped: text 'false' only
    define(experiment, "happy", "boolean")
    assert found(api_client, experiment, "feedback.happy = 'False'") == {rated["down"].trace_id}
    assert found(api_client, experiment, "feedback.happy = 1") == {rated["up"].trace_id}
    assert found(api_client, experiment, "feedback.happy IN ('yes', 'no')") == {
        rated["up"].trace_id,
        rated["down"].trace_id,
    }


def test_number_definition_reads_quoted_numbers_as_numbers(api_client, experiment, rated):
    assert found(api_client, experiment, "feedback.rating = '4'") == set()  # untyped: the text of 4.0 is '4.0'
    define(experiment, "rating", "number", min=1, max=5)
    assert found(api_client, experiment, "feedback.rating = '4'") == {rated["four"].trace_id}
    assert found(api_client, experiment, "feedback.rating IN ('4', '5')") == {rated["four"].trace_id}


def test_multiple_category_compares_by_membership(api_client, experiment, rated):
    assert found(api_client, experiment, "feedback.tags = 'billing'") == set()
    define(experiment, "tags", "category", options=["billing", "refund", "shipping"], multiple=True)
    assert found(api_client, experiment, "feedback.tags = 'billing'") == {rated["tagged"].trace_id}
    assert found(api_client, experiment, "feedback.tags != 'billing'") == {rated["four"].trace_id}
    assert found(api_client, experiment, "feedback.tags IN ('refund', 'shipping')") == {
        rated["tagged"].trace_id,
        rated["four"].trace_id,
    }
    assert found(api_client, experiment, "feedback.tags NOT IN ('refund', 'shipping')") == set()
