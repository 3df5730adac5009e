"""Hostile JSON values on every write channel, and reads of whatever got stored.

NUL characters, lone surrogates ("\\ud800") and non-finite numbers (1e400 parses to infinity) are
refused with a 400 naming the field on explicit writes, and replaced and marked in span exports
(feedbackhub.values). Whatever sits in the tables, including rows written before the fix, every
page and API that shows it answers 200. Runs on SQLite and PostgreSQL.
"""

import json

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from assessments.models import Assessment
from feedbackhub import values
from traces.models import Experiment, Span, Trace

from ..factories import make_feedback
from ..mlflow import payloads
from ..mlflow.rawapi import V3, MlflowApi

pytestmark = pytest.mark.django_db

# JSON text as an attacker writes it; "§" in a body template is replaced by one of these.
TEXT_VALUES = {"surrogate": '"lone \\ud800"', "nul": '"a\\u0000b"'}
ANY_VALUES = {
    **TEXT_VALUES,
    "infinity": "1e400",
    "huge integer": "1" + "0" * 400,
    "nested": '{"k": ["ok", "\\udc00"]}',
    "key": '{"\\u0000k": 1}',
}
PROBLEMS = ("NUL", "surrogates", "Infinity")


def raw(template, value_text: str) -> str:
    """`template` as JSON with the string "§" replaced by the raw JSON text of a hostile value."""
    return json.dumps(template, ensure_ascii=False).replace('"§"', value_text)


def names_the_problem(text: str) -> bool:
    return any(problem in text for problem in PROBLEMS)


@pytest.fixture
def api(api_key):
    return MlflowApi(api_key[1])


@pytest.fixture
def feedback(trace):
    return make_feedback(trace, value="fine")


def native(api_client, method, url, body):
    return getattr(api_client, method)(url, body, content_type="application/json")


# --- explicit writes: refused with a 400 naming the field ------------------------------------------

NATIVE_CHANNELS = {
    # name: (method, url template, body template, field the answer names)
    "feedback value": ("post", "/api/v1/traces/{trace}/feedback", {"name": "n", "value": "§"}, "value"),
    "expectation value": ("post", "/api/v1/traces/{trace}/expectations", {"name": "n", "value": "§"}, "value"),
    "edited value": ("patch", "/api/v1/assessments/{feedback}", {"value": "§"}, "value"),
    "override value": ("post", "/api/v1/assessments/{feedback}/override", {"value": "§"}, "value"),
    "batch value": (
        "post",
        "/api/v1/feedback:batch",
        {"items": [{"trace_id": "{trace}", "name": "n", "value": "§"}]},
        "value",
    ),
    "span inputs": (
        "post",
        "/api/v1/traces",
        {"spans": [{"span_id": "00000000000000aa", "start_time_ns": 1, "inputs": {"q": "§"}}]},
        "inputs",
    ),
    "span outputs": (
        "post",
        "/api/v1/traces",
        {"spans": [{"span_id": "00000000000000aa", "start_time_ns": 1, "outputs": "§"}]},
        "outputs",
    ),
    "span attributes": (
        "post",
        "/api/v1/traces",
        {"spans": [{"span_id": "00000000000000aa", "start_time_ns": 1, "attributes": {"a": "§"}}]},
        "attributes",
    ),
}
NATIVE_TEXT_CHANNELS = {
    "feedback rationale": ("post", "/api/v1/traces/{trace}/feedback", {"name": "n", "value": 1, "rationale": "§"}),
    "feedback metadata": ("post", "/api/v1/traces/{trace}/feedback", {"name": "n", "value": 1, "metadata": {"k": "§"}}),
    "feedback name": ("post", "/api/v1/traces/{trace}/feedback", {"name": "§", "value": 1}),
    "feedback source id": (
        "post",
        "/api/v1/traces/{trace}/feedback",
        {"name": "n", "value": 1, "source": {"source_type": "CODE", "source_id": "§"}},
    ),
    "batch rationale": (
        "post",
        "/api/v1/feedback:batch",
        {"items": [{"trace_id": "{trace}", "name": "n", "value": 1, "rationale": "§"}]},
    ),
    "batch metadata": (
        "post",
        "/api/v1/feedback:batch",
        {"items": [{"trace_id": "{trace}", "name": "n", "value": 1, "metadata": {"k": "§"}}]},
    ),
    "trace tags": ("post", "/api/v1/traces", {"tags": {"env": "§"}}),
    "trace metadata": ("post", "/api/v1/traces", {"metadata": {"§": "v"}}),
    "experiment name": ("post", "/api/v1/experiments", {"name": "§"}),
}


def _fill(template, trace, feedback):
    return json.loads(json.dumps(template).replace("{trace}", trace.trace_id).replace("{feedback}", feedback.pk))


def _stored():
    return (Assessment.objects.count(), Trace.objects.count(), Span.objects.count(), Experiment.objects.count())


@pytest.mark.parametrize("value", ANY_VALUES)
@pytest.mark.parametrize("channel", NATIVE_CHANNELS)
def test_native_api_refuses_hostile_values_naming_the_field(api_client, trace, feedback, channel, value):
    method, url, template, field = NATIVE_CHANNELS[channel]
    before = _stored()
    response = native(
        api_client, method, _fill(url, trace, feedback), raw(_fill(template, trace, feedback), ANY_VALUES[value])
    )
    assert response.status_code == 400, response.content
    assert field in response.content.decode(), response.content
    assert _stored() == before
    assert Assessment.objects.get(pk=feedback.pk).value == "fine"


@pytest.mark.parametrize("value", TEXT_VALUES)
@pytest.mark.parametrize("channel", NATIVE_TEXT_CHANNELS)
def test_native_api_refuses_hostile_text_naming_the_field(api_client, trace, feedback, channel, value):
    method, url, template = NATIVE_TEXT_CHANNELS[channel]
    before = _stored()
    response = native(
        api_client, method, _fill(url, trace, feedback), raw(_fill(template, trace, feedback), TEXT_VALUES[value])
    )
    assert response.status_code == 400, response.content
    field = {"feedback source id": "source", "trace tags": "tags", "trace metadata": "metadata"}.get(channel)
    assert (field or channel.split()[-1]) in response.content.decode(), response.content
    assert _stored() == before


def test_one_e_400_in_span_inputs_is_a_400_not_a_500(api_client):
    """Issue 12 item 5: `1e400` in span inputs on POST /api/v1/traces answered 500 on both databases."""
    body = '{"spans": [{"span_id": "00000000000000aa", "start_time_ns": 1, "inputs": {"x": 1e400}}]}'
    response = native(api_client, "post", "/api/v1/traces", body)
    assert response.status_code == 400, response.content
    assert response.json() == {"spans": {"0": {"inputs": [f"{values.NUMBER_PROBLEM} (at x)"]}}}
    assert not Trace.objects.exists()


def test_nul_in_a_batch_value_is_refused(api_client, trace):
    """Issue 12 item 5: NUL in a batch value was stored on SQLite (500 on PostgreSQL)."""
    body = {"items": [{"trace_id": trace.trace_id, "name": "n", "value": "a\x00b"}]}
    response = api_client.post("/api/v1/feedback:batch", body, format="json")
    assert response.status_code == 400, response.content
    assert "value" in response.content.decode() and "NUL" in response.content.decode()
    assert not Assessment.objects.exists()


@pytest.mark.parametrize("value", ["surrogate", "nul", "infinity"])
def test_end_user_token_posts_refuse_hostile_values(api_client, trace, value):
    """The issue's repro: a token for string comments, then a lone surrogate, without login."""
    issued = api_client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback-tokens",
        {"names": ["comment"], "value_types": ["string", "number"]},
        format="json",
    ).json()
    body = raw({"token": issued["token"], "name": "comment", "value": "§"}, ANY_VALUES[value])
    response = APIClient().post(public_api_url(), body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "value" in response.json() and names_the_problem(response.content.decode())
    assert not Assessment.objects.exists()
    rationale = raw({"token": issued["token"], "name": "comment", "value": "ok", "rationale": "§"}, TEXT_VALUES["nul"])
    response = APIClient().post(public_api_url(), rationale, content_type="application/json")
    assert response.status_code == 400 and "rationale" in response.json()
    assert Client().get(f"/experiments/{trace.experiment_id}/traces/").status_code in (200, 302)


def public_api_url():
    return "/api/v1/public/feedback"


@pytest.mark.parametrize("value", ANY_VALUES)
def test_the_panels_json_field_refuses_hostile_values(reviewer_client, trace, value):
    url = reverse("assessments:feedback_create", args=[trace.trace_id])
    form = {"name": "n", "value_type": "json", "value_json": ANY_VALUES[value], "rationale": ""}
    response = reviewer_client.post(url, form, headers={"HX-Request": "true"})
    assert response.status_code == 200  # the panel again, with the error next to the field
    assert names_the_problem(response.content.decode())
    assert not Assessment.objects.exists()


MLFLOW_FEEDBACK = {
    "assessment": {
        "assessment_name": "n",
        "source": {"source_type": "HUMAN", "source_id": "u"},
        "feedback": {"value": "§"},
    }
}


@pytest.mark.parametrize("value", ANY_VALUES)
def test_mlflow_assessments_refuse_hostile_values_naming_the_field(api, trace, feedback, value):
    before = _stored()
    response = api.post(f"{V3}/traces/{trace.trace_id}/assessments", raw(MLFLOW_FEEDBACK, ANY_VALUES[value]))
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'assessment.feedback.value" in response.json()["message"] and names_the_problem(response.json()["message"])
    update = {**MLFLOW_FEEDBACK, "update_mask": "feedback"}
    response = api.patch(f"{V3}/traces/{trace.trace_id}/assessments/{feedback.pk}", raw(update, ANY_VALUES[value]))
    assert response.status_code == 400, response.content
    assert _stored() == before and Assessment.objects.get(pk=feedback.pk).value == "fine"


@pytest.mark.parametrize("value", ANY_VALUES)
def test_mlflow_expectation_json_text_with_hostile_values_is_refused(api, trace, value):
    serialized = {"serialization_format": "JSON_FORMAT", "value": ANY_VALUES[value]}
    body = {"assessment": {"assessment_name": "e", "expectation": {"serialized_value": serialized}}}
    response = api.post(f"{V3}/traces/{trace.trace_id}/assessments", body)
    assert response.status_code == 400, response.content
    assert "value" in response.json()["message"] and names_the_problem(response.json()["message"])
    assert not Assessment.objects.exists()


@pytest.mark.parametrize("value", TEXT_VALUES)
def test_mlflow_tags_and_experiment_names_refuse_hostile_text(api, trace, value):
    response = api.patch(
        f"/api/2.0/mlflow/traces/{trace.trace_id}/tags", raw({"key": "k", "value": "§"}, TEXT_VALUES[value])
    )
    assert response.status_code == 400 and "'value'" in response.json()["message"], response.content
    response = api.patch(
        f"/api/2.0/mlflow/traces/{trace.trace_id}/tags", raw({"key": "§", "value": "v"}, TEXT_VALUES[value])
    )
    assert response.status_code == 400 and "'key'" in response.json()["message"], response.content
    response = api.post("/api/2.0/mlflow/experiments/create", raw({"name": "§"}, TEXT_VALUES[value]))
    assert response.status_code == 400 and "'name'" in response.json()["message"], response.content
    assert Trace.objects.get(pk=trace.pk).tags == {"env": "test"}
    assert Experiment.objects.count() == 1


# --- exports: replaced and marked ------------------------------------------------------------------

HOSTILE_ATTRIBUTES = {"nul": "a\x00b", "infinity": float("inf"), "nan": float("nan"), "fine": 1.5}


def test_otlp_export_replaces_and_marks_hostile_values(api, experiment):
    trace_id = payloads.new_trace_id()
    spans = payloads.mlflow_spans(trace_id, 1)
    spans[0]["attributes"].update(HOSTILE_ATTRIBUTES)
    spans[0]["attributes"]["mlflow.spanInputs"] = {"question": "a\x00", "score": float("-inf")}
    assert api.otlp(trace_id, spans, experiment.pk).status_code == 200
    span = Span.objects.get(trace_id=trace_id)
    assert span.inputs == {"question": "a\ufffd", "score": "-Infinity"}
    assert {key: span.attributes[key] for key in HOSTILE_ATTRIBUTES} == {
        "nul": "a\ufffdb",
        "infinity": "Infinity",
        "nan": "NaN",
        "fine": 1.5,
    }
    assert sorted(span.attributes[values.MARK_ATTRIBUTE]) == sorted(
        ["inputs.question", "inputs.score", "attributes.nul", "attributes.infinity", "attributes.nan"]
    )
    assert_every_read_answers_200(api, Trace.objects.get(pk=trace_id))


def test_otlp_json_export_with_a_lone_surrogate_is_never_a_500(api, experiment, api_key):
    trace_id = payloads.new_trace_id()
    body = (
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "%s", "spanId": "00000000000000aa", '
        '"name": "s", "startTimeUnixNano": "1795702948564140009", "endTimeUnixNano": "1795702948564140010", '
        '"attributes": [{"key": "q", "value": {"stringValue": "x\\ud800"}}, '
        '{"key": "n", "value": {"doubleValue": "Infinity"}}]}]}]}]}'
    ) % trace_id.removeprefix("tr-")
    response = Client().post(
        "/v1/traces",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key[1]}", "x-mlflow-experiment-id": str(experiment.pk)},
    )
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        span = Span.objects.get(trace_id=trace_id)
        assert values.problem([span.attributes, span.inputs, span.outputs]) is None
        assert_every_read_answers_200(api, Trace.objects.get(pk=trace_id))


def test_mlflow_start_trace_and_traces_json_replace_and_mark(api, experiment):
    trace_id = payloads.new_trace_id()
    body = payloads.trace_info(trace_id, experiment.pk, num_spans=1)
    body["trace"]["trace_info"]["tags"]["env"] = "§"
    body["trace"]["trace_info"]["trace_metadata"]["mlflow.trace.user"] = "§§"
    text = json.dumps(body, ensure_ascii=False).replace('"§"', '"x\\ud800"').replace('"§§"', '"u\\u0000"')
    assert api.post(f"{V3}/traces", text).status_code == 200
    trace = Trace.objects.get(pk=trace_id)
    assert trace.tags["env"] == "x\ufffd" and trace.metadata["mlflow.trace.user"] == "u\ufffd"
    attributes = {
        "mlflow.spanType": '"CHAIN"',
        "mlflow.spanInputs": '{"q": "\\ud800", "n": 1e400}',
        "mlflow.spanOutputs": '"a\\u0000"',
        "score": "NaN",
    }
    span = {
        "trace_id": "xlJNn9QSBYv/gKvLDNW6Ww==",
        "span_id": "EW3JTzpWB3o=",
        "parent_span_id": None,
        "name": "answer",
        "start_time_unix_nano": 1795702948564140009,
        "end_time_unix_nano": 1795702948632720728,
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": attributes,
    }
    path = f"/api/2.0/mlflow-artifacts/artifacts/{experiment.pk}/traces/{trace_id}/artifacts/traces.json"
    assert api.put(path, json.dumps({"spans": [span]})).status_code == 200
    stored = Span.objects.get(trace_id=trace_id)
    assert stored.inputs == {"q": "\ufffd", "n": "Infinity"} and stored.outputs == "a\ufffd"
    assert stored.attributes["score"] == "NaN"
    assert sorted(stored.attributes[values.MARK_ATTRIBUTE]) == ["attributes.score", "inputs.n", "inputs.q", "outputs"]
    assert_every_read_answers_200(api, trace)


# --- reads never fail because of a stored value ------------------------------------------------------

# Rows as the code before feedbackhub.values could leave them on SQLite (JSON text escaped by
# json.dumps, so the column's JSON_VALID check passes); PostgreSQL's jsonb refuses all but 1e400.
POISON = {
    "surrogate": '"bad \\ud800"',
    "nul": '"a\\u0000b"',
    "infinity": "1e400",
    "nested": '{"k": ["\\udc00", 1e999, "ok"]}',
}


def _poison(trace, feedback, text: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE assessments_assessment SET value = %s WHERE assessment_id = %s", [text, feedback.pk])
        cursor.execute(
            "UPDATE assessments_assessment SET metadata = %s WHERE assessment_id = %s",
            ['{"k": %s}' % text, feedback.pk],
        )
        cursor.execute(
            "UPDATE assessments_revision SET after = %s WHERE assessment_id = %s",
            ['{"value": %s}' % text, feedback.pk],
        )
        cursor.execute(
            "UPDATE traces_span SET inputs = %s, outputs = %s, attributes = %s, events = %s WHERE trace_id = %s",
            [text, text, '{"a": %s}' % text, '[{"name": "e", "attributes": {"a": %s}}]' % text, trace.pk],
        )
        cursor.execute(
            "UPDATE traces_trace SET tags = %s, metadata = %s WHERE trace_id = %s",
            ['{"env": %s}' % text, '{"mlflow.trace.user": %s}' % text, trace.pk],
        )


@pytest.mark.parametrize("value", POISON)
def test_rows_from_before_the_fix_read_back_everywhere(api, reviewer_client, trace, feedback, value):
    try:
        _poison(trace, feedback, POISON[value])
    except (DatabaseError, ValueError):
        assert connection.vendor == "postgresql"  # jsonb cannot hold it: nothing to read back
        return
    assert_every_read_answers_200(api, trace, reviewer_client)
    stored = Assessment.objects.get(pk=feedback.pk)
    assert values.problem([stored.value, stored.metadata]) is None


def assert_every_read_answers_200(api, trace, reviewer_client=None):
    """The trace page, its span pages and panel, the experiment's list (with filters), the native
    API, and MLflow's trace reads and search."""
    from traces.models import Membership

    if reviewer_client is None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user(username=f"reader-{trace.pk[-8:]}", password="pw")
        Membership.objects.create(user=user, experiment_id=trace.experiment_id, role=Membership.Role.REVIEWER)
        reviewer_client = Client()
        reviewer_client.force_login(user)
    experiment = trace.experiment_id
    assessment_ids = list(Assessment.objects.filter(trace_id=trace.pk).values_list("pk", flat=True))
    pages = [
        f"/traces/{trace.pk}/",
        f"/traces/{trace.pk}/summary/",
        f"/traces/{trace.pk}/assessments/",
        f"/experiments/{experiment}/traces/",
        f"/experiments/{experiment}/traces/?filter=tags.env+%3D+%27x%27",
        f"/experiments/{experiment}/traces/?filter=metadata.%60mlflow.trace.user%60+LIKE+%27%25u%25%27",
        f"/experiments/{experiment}/traces/?filter=feedback.user_satisfaction+IS+NOT+NULL",
        *[f"/traces/{trace.pk}/spans/{span_id}/" for span_id in trace.spans.values_list("span_id", flat=True)],
        *[f"/assessments/{assessment_id}/history/" for assessment_id in assessment_ids],
    ]
    for url in pages:
        assert reviewer_client.get(url, headers={"HX-Request": "true"}).status_code == 200, url
        assert reviewer_client.get(url).status_code in (200, 302), url  # fragments redirect to their page
    reads = [
        f"/api/v1/traces/{trace.pk}",
        f"/api/v1/traces/{trace.pk}/assessments",
        f"/api/v1/traces?experiment_id={experiment}",
        f"/api/v1/traces?experiment_id={experiment}&filter=tags.env+%3D+%27x%27",
        *[f"/api/v1/assessments/{assessment_id}" for assessment_id in assessment_ids],
        *[f"/api/v1/assessments/{assessment_id}/history" for assessment_id in assessment_ids],
        f"{V3}/traces/{trace.pk}",
        f"{V3}/traces/get?trace_id={trace.pk}",
        f"{V3}/traces/batchGet?trace_ids={trace.pk}",
        f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/traces/{trace.pk}/artifacts/traces.json",
    ]
    for url in reads:
        response = api.client.get(url, headers=api.headers)
        assert response.status_code == 200, (url, response.content[:300])
        json.loads(response.content)  # valid JSON, valid UTF-8
    location = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment)}}]}
    for body in (location, {**location, "filter": "tags.env = 'x'"}):
        response = api.post(f"{V3}/traces/search", body)
        assert response.status_code == 200, response.content[:300]
        assert trace.pk in response.content.decode() or body.get("filter")
