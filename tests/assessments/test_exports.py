"""Exports: every format and column, nested/flattened traces, filters and time range, access,
errors, query counts, the trace list's Export menu and `manage.py export`."""

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from assessments import services
from assessments.definitions import services as definition_services
from assessments.exports import columns
from tests.factories import SYSTEM, make_expectation, make_feedback, make_trace

ASSESSMENT_COLUMNS = columns.names(columns.ASSESSMENT_COLUMNS)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def export_url(experiment, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"/api/v1/experiments/{experiment.pk}/export" + (f"?{query}" if query else "")


def body(response) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming
    return b"".join(response.streaming_content)


def jsonl(response) -> list[dict]:
    return [json.loads(line) for line in body(response).decode().splitlines()]


@pytest.fixture
def data(experiment):
    """Two traces: one reviewed (feedback edited, a judge's feedback overridden, an expectation),
    one with a thumbs down only; plus a trace without assessments."""
    definition_services.create_definition(
        experiment=experiment, actor=SYSTEM, name="helpfulness", type="number", min=1, max=5, integer=True
    )
    reviewed = make_trace(
        experiment,
        spans=2,
        request_time=T0,
        tags={"env": "prod", "team": "search"},
        metadata={"mlflow.trace.session": "sess-1", "mlflow.trace.user": "user-1"},
        request_preview='{"question": "What is MLflow?"}',
        response_preview="An open source platform.",
    )
    thumbs = make_feedback(reviewed, value=True, rationale="clear, thanks", span_id="0000000000000002")
    services.update(assessment=thumbs, actor=SYSTEM, channel="api", rationale="very clear")
    judge = make_feedback(reviewed, name="relevance", value=0.6, source_type="LLM_JUDGE", source_id="gpt-judge")
    corrected = services.override(
        assessment=judge, actor=SYSTEM, channel="api", value=0.9, source_type="HUMAN", source_id="alice"
    )
    helpful = make_feedback(reviewed, name="helpfulness", value=4, metadata={"queue": "q1"})
    expected = make_expectation(reviewed, value={"answer": "MLflow", "sources": [1, 2]})
    thumbs_down = make_trace(experiment, request_time=T0 + timedelta(hours=1), tags={"env": "dev"})
    down = make_feedback(thumbs_down, value=False, source_id="user-9")
    empty = make_trace(experiment, request_time=T0 + timedelta(hours=2))
    return {
        "reviewed": reviewed,
        "thumbs": thumbs,
        "judge": judge,
        "corrected": corrected,
        "helpful": helpful,
        "expected": expected,
        "thumbs_down": thumbs_down,
        "down": down,
        "empty": empty,
    }


# --- assessments -------------------------------------------------------------------------------


def test_jsonl_assessments_have_every_column(api_client, experiment, data):
    rows = {row["assessment_id"]: row for row in jsonl(api_client.get(export_url(experiment)))}
    assert len(rows) == 6
    assert all(list(row) == ASSESSMENT_COLUMNS for row in rows.values())
    thumbs = rows[data["thumbs"].assessment_id]
    reviewed = data["reviewed"]
    assert thumbs == {
        "trace_id": reviewed.trace_id,
        "assessment_id": data["thumbs"].assessment_id,
        "span_id": "0000000000000002",
        "kind": "feedback",
        "name": "user_satisfaction",
        "value": True,
        "value_type": "boolean",
        "error": None,
        "rationale": "very clear",
        "source_type": "HUMAN",
        "source_id": "user_123",
        "metadata": {},
        "valid": True,
        "overrides": None,
        "definition_version": None,
        "created_at": thumbs["created_at"],
        "updated_at": thumbs["updated_at"],
        "revision_count": 2,  # create + update
        "session_id": "sess-1",
        "user_id": "user-1",
        "tags": {"env": "prod", "team": "search"},
        "request_preview": '{"question": "What is MLflow?"}',
        "response_preview": "An open source platform.",
    }
    assert datetime.fromisoformat(thumbs["created_at"]) == data["thumbs"].create_time
    assert datetime.fromisoformat(thumbs["updated_at"]) > data["thumbs"].create_time
    judge, corrected = rows[data["judge"].assessment_id], rows[data["corrected"].assessment_id]
    assert (judge["valid"], judge["value"], judge["value_type"], judge["source_type"]) == (
        False,
        0.6,
        "number",
        "LLM_JUDGE",
    )
    assert (corrected["valid"], corrected["overrides"], corrected["value"]) == (True, judge["assessment_id"], 0.9)
    helpful = rows[data["helpful"].assessment_id]
    assert (helpful["definition_version"], helpful["metadata"], helpful["value"]) == (1, {"queue": "q1"}, 4)
    expected = rows[data["expected"].assessment_id]
    assert (expected["kind"], expected["value"], expected["value_type"]) == (
        "expectation",
        {"answer": "MLflow", "sources": [1, 2]},
        "object",
    )
    down = rows[data["down"].assessment_id]
    assert (down["session_id"], down["tags"]) == ("", {"env": "dev"})
    assert down["request_preview"] == data["thumbs_down"].request_preview != ""


def test_csv_assessments_have_header_and_json_values(api_client, experiment, data):
    response = api_client.get(export_url(experiment, format="csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="experiment-{experiment.pk}-assessments.csv"' in response["Content-Disposition"]
    reader = csv.DictReader(io.StringIO(body(response).decode()))
    assert reader.fieldnames == ASSESSMENT_COLUMNS
    rows = {row["assessment_id"]: row for row in reader}
    expected = rows[data["expected"].assessment_id]
    assert json.loads(expected["value"]) == {"answer": "MLflow", "sources": [1, 2]}
    assert json.loads(expected["tags"]) == {"env": "prod", "team": "search"}
    thumbs = rows[data["thumbs"].assessment_id]
    assert (thumbs["value"], thumbs["valid"], thumbs["revision_count"], thumbs["session_id"]) == (
        "true",
        "True",
        "2",
        "sess-1",
    )
    assert datetime.fromisoformat(thumbs["created_at"]) == data["thumbs"].create_time
    assert rows[data["helpful"].assessment_id]["definition_version"] == "1"
    assert rows[data["corrected"].assessment_id]["overrides"] == data["judge"].assessment_id


def test_parquet_assessments_read_back_with_their_types(api_client, experiment, data):
    response = api_client.get(export_url(experiment, format="parquet"))
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body(response)))
    assert table.schema.names == ASSESSMENT_COLUMNS
    types = dict(zip(table.schema.names, table.schema.types))
    assert types["created_at"] == pa.timestamp("us", tz="UTC")
    assert types["valid"] == pa.bool_()
    assert types["definition_version"] == pa.int64() and types["revision_count"] == pa.int64()
    assert types["tags"] == pa.map_(pa.string(), pa.string())
    rows = {row["assessment_id"]: row for row in table.to_pylist()}
    thumbs = rows[data["thumbs"].assessment_id]
    assert thumbs["created_at"] == data["thumbs"].create_time
    assert (thumbs["valid"], thumbs["revision_count"], json.loads(thumbs["value"])) == (True, 2, True)
    assert sorted(thumbs["tags"]) == [("env", "prod"), ("team", "search")]
    assert rows[data["helpful"].assessment_id]["definition_version"] == 1
    assert rows[data["judge"].assessment_id]["valid"] is False
    assert json.loads(rows[data["expected"].assessment_id]["value"]) == {"answer": "MLflow", "sources": [1, 2]}


def test_parquet_of_nothing_is_a_readable_empty_table(api_client, experiment, data):
    response = api_client.get(export_url(experiment, format="parquet", filter="tags.env%20=%20'none'"))
    table = pq.read_table(io.BytesIO(body(response)))
    assert table.num_rows == 0 and table.schema.names == ASSESSMENT_COLUMNS


def test_error_feedback_has_value_type_error(api_client, experiment):
    trace = make_trace(experiment)
    failed = make_feedback(trace, name="judge", value=None, error={"error_code": "TIMEOUT", "error_message": "slow"})
    (row,) = jsonl(api_client.get(export_url(experiment)))
    assert (row["assessment_id"], row["value"], row["value_type"]) == (failed.assessment_id, None, "error")
    assert row["error"]["error_code"] == "TIMEOUT"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL writes the JSONL lines itself")
def test_postgresql_jsonl_lines_are_the_bytes_python_writes(experiment, data, monkeypatch):
    """The lines PostgreSQL builds (row_to_json through COPY) equal the orjson rows byte for byte,
    escapes, nulls, numbers, nested JSON and every value type included."""
    from assessments.exports import selectors, writers

    tricky = make_trace(
        experiment,
        tags={"k\\ey": 'va"l\\ue', "ünï": "😀"},
        request_preview='a "quoted" \\ back\\slash\ttab\nnew line\r\x01\x1f\x7f \u2028 é 😀',
        response_preview="",
    )
    make_feedback(tricky, name='na"me\\', value='str "with" \\ and \n', rationale="line\nbreak\t\x08\x0c")
    make_feedback(tricky, name="num", value=1.0, source_id="ü")
    make_feedback(tricky, name="neg", value=-3e-7)
    make_feedback(tricky, name="lst", value=[1, "two", None, {"x": [True]}])
    make_feedback(tricky, name="nul", value=None, error={"error_code": "E", "error_message": 'b"ad\\'})
    make_expectation(tricky, name="obj", value={"a": {"b": [1.5, "\\u0000 as text"]}})
    spec = selectors.export_spec(SYSTEM, experiment, what="assessments")
    assert writers._lines_by_database(spec)
    by_database = b"".join(writers.stream(spec, "jsonl"))
    monkeypatch.setattr(writers, "_lines_by_database", lambda spec: False)
    by_python = b"".join(writers.stream(spec, "jsonl"))
    assert by_database == by_python
    assert len(by_database.splitlines()) == 12


# --- traces ------------------------------------------------------------------------------------


def test_jsonl_traces_nest_their_assessments(api_client, experiment, data):
    rows = jsonl(api_client.get(export_url(experiment, what="traces")))
    assert [row["trace_id"] for row in rows] == [
        data["empty"].trace_id,
        data["thumbs_down"].trace_id,
        data["reviewed"].trace_id,
    ]  # newest first, as the trace list
    reviewed = rows[2]
    assert list(reviewed) == [*columns.names(columns.TRACE_OWN), "assessments"]
    assert (reviewed["session_id"], reviewed["user_id"], reviewed["tags"], reviewed["span_count"]) == (
        "sess-1",
        "user-1",
        {"env": "prod", "team": "search"},
        2,
    )
    assert reviewed["metadata"]["mlflow.trace.session"] == "sess-1"
    assert datetime.fromisoformat(reviewed["request_time"]) == T0
    nested = reviewed["assessments"]
    assert [item["assessment_id"] for item in nested] == [
        data[key].assessment_id for key in ("thumbs", "judge", "corrected", "helpful", "expected")
    ]
    assert list(nested[0]) == columns.names(columns.ASSESSMENT_OWN)
    assert (nested[0]["revision_count"], nested[0]["value"], nested[1]["valid"]) == (2, True, False)
    assert rows[0]["assessments"] == []


def test_csv_traces_flatten_one_row_per_assessment(api_client, experiment, data):
    reader = csv.DictReader(
        io.StringIO(body(api_client.get(export_url(experiment, what="traces", format="csv"))).decode())
    )
    assert reader.fieldnames == columns.names(columns.TRACE_CSV_COLUMNS)
    rows = list(reader)
    assert len(rows) == 1 + 1 + 5  # the empty trace keeps one row
    empty = [row for row in rows if row["trace_id"] == data["empty"].trace_id]
    assert len(empty) == 1 and empty[0]["assessment_id"] == ""
    reviewed = [row for row in rows if row["trace_id"] == data["reviewed"].trace_id]
    assert {row["assessment_name"] for row in reviewed} == {
        "user_satisfaction",
        "relevance",
        "helpfulness",
        "expected_answer",
    }
    assert all(json.loads(row["tags"]) == {"env": "prod", "team": "search"} for row in reviewed)


def test_parquet_traces_nest_a_list_of_structs(api_client, experiment, data):
    table = pq.read_table(io.BytesIO(body(api_client.get(export_url(experiment, what="traces", format="parquet")))))
    types = dict(zip(table.schema.names, table.schema.types))
    assert types["request_time"] == pa.timestamp("us", tz="UTC")
    assert types["assessments"] == pa.list_(columns.ASSESSMENT_STRUCT)
    rows = {row["trace_id"]: row for row in table.to_pylist()}
    reviewed = rows[data["reviewed"].trace_id]
    assert reviewed["request_time"] == T0
    assert len(reviewed["assessments"]) == 5
    assert reviewed["assessments"][0]["created_at"] == data["thumbs"].create_time
    assert rows[data["empty"].trace_id]["assessments"] == []


# --- filters, time range -----------------------------------------------------------------------


def test_filter_narrows_both_exports(api_client, experiment, data):
    thumbs_down = "feedback.user_satisfaction%20=%20false"
    assessments = jsonl(api_client.get(export_url(experiment, filter=thumbs_down)))
    assert [row["assessment_id"] for row in assessments] == [data["down"].assessment_id]
    traces = jsonl(api_client.get(export_url(experiment, what="traces", filter=thumbs_down)))
    assert [row["trace_id"] for row in traces] == [data["thumbs_down"].trace_id]


def test_time_range_bounds_the_traces(api_client, experiment, data):
    start = int((T0 + timedelta(minutes=30)).timestamp() * 1000)
    end = (T0 + timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    rows = jsonl(api_client.get(export_url(experiment, what="traces", start_time=start, end_time=end)))
    assert [row["trace_id"] for row in rows] == [data["thumbs_down"].trace_id]
    rows = jsonl(api_client.get(export_url(experiment, start_time=start)))
    assert [row["assessment_id"] for row in rows] == [data["down"].assessment_id]


def test_other_experiments_stay_out(api_client, experiment, other_experiment, data, staff):
    make_feedback(make_trace(other_experiment))
    api_client.force_authenticate(staff)
    assert len(jsonl(api_client.get(export_url(experiment)))) == 6


# --- errors and access -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"format": "xlsx"}, "format", "'xlsx' is not one of jsonl, csv, parquet"),
        ({"what": "spans"}, "what", "'spans' is not one of assessments, traces"),
        ({"filter": "feedback.x%20=="}, "filter", "Unknown operator '=='"),
        ({"start_time": "yesterday"}, "start_time", "epoch milliseconds or an ISO 8601 time"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api_client, experiment, params, field, words):
    response = api_client.get(export_url(experiment, **params))
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


def test_viewer_exports_outsider_gets_404_anonymous_401(client, experiment, viewer, outsider, data):
    client.force_login(viewer)
    assert len(jsonl(client.get(export_url(experiment)))) == 6
    client.force_login(outsider)
    assert client.get(export_url(experiment)).status_code == 404
    client.logout()
    assert client.get(export_url(experiment)).status_code in (401, 403)
    assert client.get("/api/v1/experiments/999999/export").status_code in (401, 403)


def test_unknown_experiment_is_404(api_client):
    assert api_client.get("/api/v1/experiments/999999/export").status_code == 404


@pytest.mark.parametrize("what", ["assessments", "traces"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_query_count_does_not_grow_with_rows(api_client, experiment, django_assert_max_num_queries, what, fmt):
    for n in range(30):
        trace = make_trace(experiment)
        make_feedback(trace, value=bool(n % 2))
        make_feedback(trace, name="relevance", value=n / 30, source_type="LLM_JUDGE")
    # experiment (+ key scope), the export query (traces: + their assessments), savepoints
    with django_assert_max_num_queries(8):
        body(api_client.get(export_url(experiment, what=what, format=fmt)))


def test_rows_come_in_chunks_across_round_trips(experiment, monkeypatch):
    """More rows than a chunk: every row once, in order, with a chunk size of 2."""
    from assessments.exports import selectors, writers

    for n in range(5):
        make_feedback(make_trace(experiment), value=n)
    spec = selectors.export_spec(SYSTEM, experiment, what="assessments")
    monkeypatch.setattr(selectors, "CHUNK_SIZE", 2)
    monkeypatch.setattr(writers, "assessment_chunks", lambda spec: selectors.assessment_chunks(spec, chunk_size=2))
    seen = []
    lines = b"".join(writers.stream(spec, "jsonl", progress=seen.append)).decode().splitlines()
    assert [json.loads(line)["value"] for line in lines] == [0, 1, 2, 3, 4]
    assert seen == [2, 2, 1]


# --- trace list and manage.py export -----------------------------------------------------------


def test_trace_list_offers_export_of_the_current_filter(reviewer_client, experiment, data):
    response = reviewer_client.get(
        reverse("traces:trace_list", args=[experiment.pk]), {"filter": "feedback.user_satisfaction = false"}
    )
    html = response.content.decode()
    assert (
        f"/api/v1/experiments/{experiment.pk}/export?what=assessments&amp;format=csv&amp;"
        "filter=feedback.user_satisfaction%20%3D%20false" in html
    )
    assert f"/api/v1/experiments/{experiment.pk}/export?what=traces&amp;format=parquet" in html
    link = f"/api/v1/experiments/{experiment.pk}/export?what=assessments&format=jsonl&filter=feedback.user_satisfaction%20%3D%20false"
    rows = jsonl(reviewer_client.get(link))
    assert [row["assessment_id"] for row in rows] == [data["down"].assessment_id]


def test_export_command_writes_the_file_with_a_progress_bar(experiment, data, tmp_path):
    target = tmp_path / "out.parquet"
    err = io.StringIO()
    call_command("export", experiment=experiment.name, format="parquet", output=str(target), stderr=err)
    assert pq.read_table(target).num_rows == 6
    assert "6/6 rows" in err.getvalue() and "100%" in err.getvalue()
    target = tmp_path / "traces.jsonl"
    call_command(
        "export",
        experiment=str(experiment.pk),
        what="traces",
        filter="tags.env = 'dev'",
        output=str(target),
        verbosity=0,
        stderr=err,
    )
    assert [json.loads(line)["trace_id"] for line in target.read_text().splitlines()] == [data["thumbs_down"].trace_id]


def test_export_command_names_a_bad_filter(experiment):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="filter: Unknown operator"):
        call_command("export", experiment=experiment.name, filter="name == 'x'", output="-")
    with pytest.raises(CommandError, match="not found"):
        call_command("export", experiment="nope", output="-")
