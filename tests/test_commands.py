"""Management commands: createapikey and load_demo."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from assessments.models import Assessment, Revision
from traces.models import ApiKey, Experiment, Membership, Span, Trace

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# --- createapikey --------------------------------------------------------------------------------


def test_createapikey_prints_a_working_key_once(experiment):
    out, err = run("createapikey", "--experiment", "rag-demo", "--label", "ci")
    raw = out.strip()
    key = ApiKey.objects.get()
    assert raw.startswith("fh_") and key.key_hash == ApiKey.hash(raw) and key.label == "ci"
    assert list(key.experiments.all()) == [experiment] and raw not in err
    assert "shown only now" in err
    assert client_with(raw).get("/api/v1/experiments").json()[0]["name"] == "rag-demo"


def test_createapikey_refuses_an_unknown_experiment():
    with pytest.raises(CommandError, match="does not exist.*--create"):
        run("createapikey", "--experiment", "nope")
    assert not ApiKey.objects.exists() and not Experiment.objects.exists()


def test_createapikey_can_create_the_experiment_and_scope_several(experiment):
    out, _ = run("createapikey", "--experiment", "rag-demo", "--experiment", "new-app", "--create")
    key = ApiKey.objects.get(key_hash=ApiKey.hash(out.strip()))
    assert sorted(key.experiments.values_list("name", flat=True)) == ["new-app", "rag-demo"]


def test_createapikey_keys_differ_every_time(experiment):
    first, _ = run("createapikey", "--experiment", "rag-demo")
    second, _ = run("createapikey", "--experiment", "rag-demo")
    assert first != second and ApiKey.objects.count() == 2


# --- load_demo -----------------------------------------------------------------------------------


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def counts():
    return (
        Experiment.objects.count(),
        Trace.objects.count(),
        Span.objects.count(),
        Assessment.objects.count(),
        Revision.objects.count(),
        ApiKey.objects.count(),
        get_user_model().objects.count(),
    )


def test_load_demo_is_idempotent_and_prints_the_same_key(debug):
    first, _ = run("load_demo")
    before = counts()
    second, _ = run("load_demo")
    assert counts() == before
    assert "Demo data already loaded" in second
    key_line = [line for line in first.splitlines() if "Demo API key" in line]
    assert key_line and key_line[0] in second and "fh_demo_key_change_me_" in key_line[0]
    assert "admin / admin" in first


def test_load_demo_looks_like_a_rag_app(debug):
    run("load_demo")
    demo = Experiment.objects.get(name="rag-demo")
    traces = Trace.objects.filter(experiment=demo)
    assert traces.count() >= 30
    days = {t.request_time.date() for t in traces}
    assert len(days) >= 5
    assert traces.filter(state="ERROR").count() >= 3
    assert max(traces.values_list("span_count", flat=True)) >= 140
    types = set(Span.objects.filter(trace__experiment=demo).values_list("span_type", flat=True))
    assert {"CHAIN", "RETRIEVER", "CHAT_MODEL", "TOOL", "AGENT"} <= types
    failed = Span.objects.filter(trace__experiment=demo, status_code="ERROR").first()
    assert failed.events[0]["name"] == "exception"
    assert {"exception.type", "exception.message", "exception.stacktrace"} <= set(failed.events[0]["attributes"])
    chat = Span.objects.filter(trace__experiment=demo, span_type="CHAT_MODEL", status_code="OK").first()
    assert [m["role"] for m in chat.inputs["messages"]][:2] == ["system", "user"]
    assert chat.outputs["choices"][0]["message"]["role"] == "assistant"
    retriever = Span.objects.filter(trace__experiment=demo, span_type="RETRIEVER", status_code="OK").first()
    assert {"id", "page_content", "metadata"} <= set(retriever.outputs[0])

    assessments = Assessment.objects.filter(experiment=demo)
    value_types = {a.value_type for a in assessments}
    assert {"boolean", "number", "string", "list", "object", "error"} <= value_types
    assert {"HUMAN", "LLM_JUDGE", "CODE"} <= set(assessments.values_list("source_type", flat=True))
    assert assessments.filter(kind="expectation", name="expected_answer").exists()
    overridden = assessments.filter(valid=False, source_type="LLM_JUDGE", name="relevance").first()
    assert overridden.overridden_by.get().source_type == "HUMAN"
    assert assessments.filter(name="rating", value__in=[1, 2, 3, 4, 5]).exists()
    assert assessments.exclude(span_id=None).exists()
    assert Revision.objects.filter(action="override").exists() and Revision.objects.filter(action="update").exists()


def test_load_demo_creates_working_logins_and_key(debug, client):
    out, _ = run("load_demo")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.check_password("admin")
    reviewer = get_user_model().objects.get(username="reviewer")
    assert reviewer.check_password("reviewer") and not reviewer.is_staff
    assert Membership.objects.get(user=reviewer).role == "reviewer"
    assert client.login(username="admin", password="admin")
    demo_key = "fh_demo_key_change_me_0000000000000000000000"
    response = client_with(demo_key).post(
        "/api/v1/traces",
        {"spans": [{"span_id": "00000000000000aa", "name": "hello", "start_time_ns": 1, "end_time_ns": 2}]},
        format="json",
    )
    assert response.status_code == 201 and response.json()["experiment_id"] == str(
        Experiment.objects.get(name="rag-demo").pk
    )


def test_load_demo_key_comes_from_the_environment(debug, monkeypatch):
    monkeypatch.setenv("FEEDBACKHUB_DEMO_KEY", "fh_custom_demo_key_for_this_machine_42")
    out, _ = run("load_demo")
    assert "fh_custom_demo_key_for_this_machine_42" in out
    assert ApiKey.objects.filter(key_hash=ApiKey.hash("fh_custom_demo_key_for_this_machine_42")).exists()


def test_load_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        run("load_demo")
    assert not Trace.objects.exists()


def test_load_demo_has_a_review_queue_of_the_thumbs_down(debug):
    from assessments.queues.models import Queue, QueueItem
    from traces.filters import filter_traces

    run("load_demo")
    demo = Experiment.objects.get(name="rag-demo")
    queue = Queue.objects.get(experiment=demo)
    assert queue.questions == ["rating", "tone"] and queue.answers_per_item == 2
    thumbs_down = "feedback.user_satisfaction = false"
    assert queue.rule_filter == thumbs_down
    queued = set(QueueItem.objects.filter(queue=queue).values_list("trace_id", flat=True))
    assert queued and queued == set(
        filter_traces(Trace.objects.filter(experiment=demo), thumbs_down).values_list("trace_id", flat=True)
    )
    run("load_demo")
    assert Queue.objects.filter(experiment=demo).count() == 1
