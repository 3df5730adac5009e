"""Issue 17, item 1: the reviewer's one-key verdict writes the experiment's verdict series
(`verdict_name`, default reviewer_verdict), never end users' thumbs or a code check's series;
home cards show series by name and source type; "not rated by me" beside "not rated"."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from assessments import selectors, services
from assessments.definitions.services import create_definition
from assessments.models import Assessment
from traces.access import Actor
from traces.filters import filter_traces
from traces.models import Trace

from ..factories import SYSTEM, make_feedback, make_trace

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def thumb(client, trace, value="true", **extra):
    return client.post(
        reverse("assessments:feedback_thumb", args=[trace.trace_id]), {"value": value, **extra}, headers=HTMX
    )


def test_thumbs_write_the_verdict_not_the_end_users_series(reviewer_client, trace, experiment):
    make_feedback(trace, name="user_satisfaction", value=True, source_id="user_123")  # an end user's
    make_feedback(make_trace(experiment), name="sql_executes", value=True, source_type="CODE")
    thumb(reviewer_client, trace, "false")
    mine = Assessment.objects.get(trace=trace, source_id="alice")
    assert (mine.name, mine.value, mine.source_type) == ("reviewer_verdict", False, "HUMAN")
    assert Assessment.objects.filter(name="user_satisfaction").count() == 1


def test_thumbs_follow_the_experiments_setting(reviewer_client, trace, experiment):
    experiment.verdict_name = "answer_ok"
    experiment.save(update_fields=["verdict_name"])
    html = reviewer_client.get(reverse("traces:trace_detail", args=[trace.trace_id])).content.decode()
    assert '<input type="hidden" name="name" value="answer_ok">' in html
    thumb(reviewer_client, trace, "true", name="answer_ok")
    assert Assessment.objects.get(trace=trace).name == "answer_ok"


def test_the_one_key_rating_refuses_another_name(reviewer_client, trace, reviewer):
    response = thumb(reviewer_client, trace, "true", name="user_satisfaction")
    assert response.status_code == 200
    assert "writes this experiment&#x27;s verdict, reviewer_verdict, not user_satisfaction" in response.content.decode()
    assert not Assessment.objects.filter(trace=trace).exists()
    with pytest.raises(ValidationError):
        services.rate(trace=trace, actor=Actor.for_user(reviewer), channel="ui", value=True, name="is_helpful")


def test_a_definition_of_the_verdict_name_governs_it(reviewer_client, trace, experiment):
    create_definition(
        experiment=experiment, actor=SYSTEM, name="reviewer_verdict", type="number", min=1, max=5, integer=True
    )
    html = reviewer_client.get(reverse("traces:trace_detail", args=[trace.trace_id])).content.decode()
    assert 'data-hotkey="u" title="Rate by its definition (u)">Rate</button>' in html
    assert 'aria-label="Thumbs up"' not in html
    refused = thumb(reviewer_client, trace, "true")
    assert "reviewer_verdict (v1) expects" in refused.content.decode()
    assert not Assessment.objects.filter(trace=trace).exists()


def test_home_stats_separate_the_verdict_from_other_series(experiment):
    traces = [make_trace(experiment) for _ in range(3)]
    for n, trace in enumerate(traces):
        make_feedback(trace, name="user_satisfaction", value=n != 0, source_id=f"user_{n}")
    make_feedback(traces[0], name="sql_executes", value=True, source_type="CODE", source_id="ci")
    make_feedback(traces[0], name="reviewer_verdict", value=False, source_id="alice")
    make_feedback(traces[1], name="relevance", value=0.4, source_type="LLM_JUDGE")
    stats = selectors.feedback_stats_by_experiment([experiment])[experiment.pk]
    assert stats["feedback_count"] == 6
    assert stats["verdict"] == {"name": "reviewer_verdict", "rated": 1, "up_rate": 0.0}
    assert stats["series"] == [
        {"name": "user_satisfaction", "rated": 3, "up_rate": 2 / 3, "source": "HUMAN"},
        {"name": "sql_executes", "rated": 1, "up_rate": 1.0, "source": "CODE"},
    ]


def test_home_card_names_each_series_and_its_source(client, reviewer, experiment):
    trace = make_trace(experiment)
    make_feedback(trace, name="user_satisfaction", value=True)
    make_feedback(trace, name="sql_executes", value=False, source_type="CODE")
    client.force_login(reviewer)
    html = client.get("/").content.decode()
    assert "Reviewers' verdict" in html and "not rated yet" in html and "Thumbs up</dt>" not in html
    assert (
        '<span class="chip-src src-human">people</span> <span class="mono"><bdi>user_satisfaction</bdi></span> <b>100%</b>'
        in html
    )
    assert (
        '<span class="chip-src src-code">code check</span> <span class="mono"><bdi>sql_executes</bdi></span> <b>0%</b> <span class="muted">passed of 1</span>'
        in html
    )


def test_not_rated_by_me_beside_not_rated(reviewer_client, experiment, reviewer):
    mine, theirs, nobodys = make_trace(experiment), make_trace(experiment), make_trace(experiment)
    make_feedback(mine, name="reviewer_verdict", value=True, source_id="alice")
    make_feedback(theirs, name="reviewer_verdict", value=False, source_id="bob")
    html = reviewer_client.get(reverse("traces:trace_list", args=[experiment.pk])).content.decode()
    assert "Not rated by me" in html and "feedback_by.reviewer_verdict" in html
    assert "feedback.reviewer_verdict+IS+NULL" in html
    queryset = Trace.objects.filter(experiment=experiment)
    not_by_me = set(filter_traces(queryset, "NOT feedback_by.reviewer_verdict = 'alice'"))
    assert not_by_me == {theirs, nobodys}
    assert set(filter_traces(queryset, "feedback.reviewer_verdict IS NULL")) == {nobodys}
    assert set(filter_traces(queryset, "feedback_by.reviewer_verdict IS NOT NULL")) == {mine, theirs}
    page = reviewer_client.get(
        reverse("traces:trace_list", args=[experiment.pk]), {"filter": "NOT feedback_by.reviewer_verdict = 'alice'"}
    ).content.decode()
    assert theirs.trace_id in page and nobodys.trace_id in page and mine.trace_id not in page


def test_owner_changes_the_verdict_name_on_the_definitions_page(client, owner, reviewer, experiment):
    url = reverse("definitions:verdict_setting", args=[experiment.pk])
    client.force_login(owner)
    page = client.get(reverse("definitions:definition_list", args=[experiment.pk])).content.decode()
    assert 'name="verdict_name" class="mono" value="reviewer_verdict"' in page
    assert client.post(url, {"verdict_name": " answer_ok "}).status_code == 302
    experiment.refresh_from_db()
    assert experiment.verdict_name == "answer_ok"
    refused = client.post(url, {"verdict_name": "   "})
    assert (
        refused.status_code == 200 and "Reviewers&#x27; verdict: must be a non-empty name" in refused.content.decode()
    )
    client.force_login(reviewer)
    assert client.post(url, {"verdict_name": "mine"}).status_code == 403
    experiment.refresh_from_db()
    assert experiment.verdict_name == "answer_ok"
