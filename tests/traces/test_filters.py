"""The filter language: tokenizer and parser (no database), then its SQL on the recorded MLflow
dataset and our extensions. The database tests run unchanged on SQLite and PostgreSQL; the
expected results are written out, so a pass on both proves both give the same answers."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from assessments import services as assessment_services
from traces.access import Actor
from traces.filters import (
    FIELDS_HELP,
    MAX_DEPTH,
    MAX_SUBQUERY_CONDITIONS,
    And,
    Comparison,
    Field,
    FilterError,
    Literal,
    Not,
    Or,
    filter_traces,
    parse_filter,
)
from traces.models import Run, RunTrace, Trace

from ..factories import make_expectation, make_experiment, make_feedback, make_trace

SYSTEM = Actor.for_system("tests")
T0 = datetime(2026, 1, 1, 10, 0, 0, 250_500, tzinfo=timezone.utc)  # deliberately not a whole millisecond
T0_MS = 1_767_261_600_250


def comparison(entity, key, operator, value=None):
    return Comparison(Field(entity, key), operator, value)


def string(value):
    return Literal("string", value)


def number(value):
    return Literal("number", value)


# --- tokenizer and parser ------------------------------------------------------------------


class TestParseTrees:
    def test_feedback_comparison(self):
        assert parse_filter("feedback.user_satisfaction = 'true'") == comparison(
            "feedback", "user_satisfaction", "=", string("true")
        )

    def test_not_binds_tighter_than_and_which_binds_tighter_than_or(self):
        a, b, c = (comparison("tags", key, "=", string("1")) for key in "abc")
        assert parse_filter("NOT tags.a = '1' AND tags.b = '1' OR tags.c = '1'") == Or((And((Not(a), b)), c))
        assert parse_filter("tags.a = '1' OR tags.b = '1' AND NOT tags.c = '1'") == Or((a, And((b, Not(c)))))

    def test_parentheses_override_precedence(self):
        a, b, c = (comparison("tags", key, "=", string("1")) for key in "abc")
        assert parse_filter("tags.a = '1' AND (tags.b = '1' OR tags.c = '1')") == And((a, Or((b, c))))
        assert parse_filter("((tags.a = '1'))") == a

    def test_chains_are_flat(self):
        node = parse_filter(" AND ".join(f"tags.k{n} = 'v'" for n in range(50)))
        assert isinstance(node, And) and len(node.children) == 50

    def test_keywords_are_case_insensitive(self):
        assert parse_filter("feedback.x is not null or not feedback.y like 'a%' and feedback.z in (1)") == Or(
            (
                comparison("feedback", "x", "IS NOT NULL"),
                And(
                    (
                        Not(comparison("feedback", "y", "LIKE", string("a%"))),
                        comparison("feedback", "z", "IN", (number(1),)),
                    )
                ),
            )
        )

    @pytest.mark.parametrize(
        "text, operator",
        [
            ("feedback.x != 'a'", "!="),
            ("feedback.x <= 1", "<="),
            ("feedback.x>=1", ">="),
            ("feedback.x ILIKE 'a'", "ILIKE"),
            ("feedback.x NOT LIKE 'a'", "NOT LIKE"),
            ("feedback.x not ilike 'a'", "NOT ILIKE"),
            ("feedback.x NOT IN ('a')", "NOT IN"),
            ("feedback.x IS NULL", "IS NULL"),
        ],
    )
    def test_operators(self, text, operator):
        assert parse_filter(text).operator == operator

    @pytest.mark.parametrize(
        "text, value",
        [
            ("feedback.x = 'it''s'", string("it's")),
            ("feedback.x = 'it\\'s'", string("it's")),
            ('feedback.x = "say ""hi"""', string('say "hi"')),
            ('feedback.x = "say \\"hi\\""', string('say "hi"')),
            ("feedback.x = 'back\\\\slash'", string("back\\slash")),
            ("feedback.x LIKE '50\\%'", string("50\\%")),  # unknown escapes stay for LIKE
            ("feedback.x = ''", string("")),
            ("feedback.x = 4", number(4)),
            ("feedback.x = -0.5", number(-0.5)),
            ("feedback.x = .5", number(0.5)),
            ("feedback.x = 1e3", number(1000.0)),
            ("feedback.x = TRUE", Literal("boolean", True)),
            ("feedback.x = false", Literal("boolean", False)),
            ("feedback.x > '0.5'", number(0.5)),  # a quoted number is fine where only numbers make sense
        ],
    )
    def test_values(self, text, value):
        parsed = parse_filter(text).value
        assert parsed == value and type(parsed.value) is type(value.value)

    def test_in_list(self):
        assert parse_filter("feedback.x IN ('a', 2, true)").value == (string("a"), number(2), Literal("boolean", True))

    @pytest.mark.parametrize(
        "text, field",
        [
            ("tags.env = 'x'", Field("tags", "env")),
            ("tag.env = 'x'", Field("tags", "env")),
            ("tags.`mlflow.traceName` = 'x'", Field("trace", "name")),
            ("tags.mlflow.traceName = 'x'", Field("trace", "name")),
            ("tags.`a.b` = 'x'", Field("tags", "a.b")),
            ("tags.`odd``key` = 'x'", Field("tags", "odd`key")),
            ("metadata.`mlflow.trace.user` = 'x'", Field("metadata", "mlflow.trace.user")),
            ("request_metadata.`mlflow.trace.user` = 'x'", Field("metadata", "mlflow.trace.user")),
            ("feedback.`my.metric` = 'x'", Field("feedback", "my.metric")),
            ("feedback.answer-quality = 'x'", Field("feedback", "answer-quality")),
            ("expectation.expected_answer = 'x'", Field("expectation", "expected_answer")),
            ("status = 'x'", Field("trace", "status")),
            ("attributes.status = 'x'", Field("trace", "status")),
            ("attribute.status = 'x'", Field("trace", "status")),
            ("trace.status = 'x'", Field("trace", "status")),
            ("attributes.name = 'x'", Field("trace", "name")),
            ("timestamp = 1", Field("trace", "timestamp_ms")),
            ("timestamp_ms = 1", Field("trace", "timestamp_ms")),
            ("execution_time = 1", Field("trace", "execution_time_ms")),
            ("trace.end_time = 1", Field("trace", "end_time_ms")),
            ("request_id = 'x'", Field("trace", "trace_id")),
            ("trace.trace_id = 'x'", Field("trace", "trace_id")),
            ("span.type = 'x'", Field("span", "type")),
        ],
    )
    def test_field_aliases(self, text, field):
        assert parse_filter(text).field == field

    def test_text_fields_take_unquoted_values_as_written(self):
        assert parse_filter("tag.reviewed = TRUE").value == string("true")
        assert parse_filter("tags.version = 1.10").value == string("1.10")

    def test_positions_point_into_the_text(self):
        node = parse_filter("status = 'OK' AND  feedback.rating > 3")
        assert node.children[1].field.position == 19
        assert node.children[1].value.position == 37


class TestParseErrors:
    @pytest.mark.parametrize(
        "text, message, position, token",
        [
            (
                "feedbak.x = 'a'",
                "Unknown field 'feedbak.x'; expected feedback., feedback_by., expectation., tags., metadata., "
                "trace., span., attributes.",
                0,
                "feedbak.x",
            ),
            ("assessment.x = 'a'", "Unknown field 'assessment.x'", 0, "assessment.x"),
            ("issue.id = 'iss-1'", "Unknown field 'issue.id'", 0, "issue.id"),
            ("status = 'OK' AND foo = 'a'", "Unknown field 'foo'", 18, "foo"),
            ("trace.foo = 'a'", "Unknown trace attribute 'foo'", 0, "trace.foo"),
            ("trace.state = 'OK'", "Invalid attribute key 'state'", 0, "trace.state"),
            ("span.content LIKE '%a%'", "Unknown span field 'content'", 0, "span.content"),
            ("feedback = 'a'", "'feedback' needs a key", 0, "feedback"),
            ("feedback.x 'a'", "Expected an operator after feedback.x", 11, "'a'"),
            ("feedback.x", "Expected an operator after feedback.x", 10, ""),
            ("status = 'OK", "Unterminated string", 9, "'OK"),
            ('status = "OK', "Unterminated string", 9, '"OK'),
            ("tags.`env = 'a'", "Unterminated name", 5, "`env = 'a'"),
            ("trace.timestamp_ms > 'abc'", "Expected a whole number of milliseconds", 21, "'abc'"),
            ("trace.execution_time_ms > 1.5", "Expected a whole number of milliseconds", 26, "1.5"),
            ("trace.timestamp_ms > 99999999999999999999", "Timestamp out of range", 21, "99999999999999999999"),
            ("feedback.x > 'high'", "> needs a number", 13, "'high'"),
            ("feedback.x < true", "< needs a number", 13, "true"),
            ("feedback.x LIKE 4", "LIKE needs a quoted pattern", 16, "4"),
            ("tags.env > 'a'", "tags.env does not support >", 9, ">"),
            ("span.name IS NULL", "span.name does not support IS NULL", 10, "IS"),
            ("timestamp_ms IN (1)", "timestamp_ms does not support IN", 13, "IN"),
            ("status = 'OK' AND", "Expected a condition after AND", 17, ""),
            ("status = 'OK' OR OR status = 'OK'", "Expected a condition after OR", 17, "OR"),
            ("NOT", "Expected a condition after NOT", 3, ""),
            ("AND status = 'OK'", "Expected a field", 0, "AND"),
            ("(status = 'OK'", "Unbalanced '('", 0, "("),
            ("(status = 'OK' status", "Expected AND, OR or ')'", 15, "status"),
            ("status = 'OK')", "Unbalanced ')'", 13, ")"),
            ("()", "Expected a field", 1, ")"),
            ("status = 'OK' tags.env = 'a'", "Expected AND, OR or the end of the filter", 14, "tags.env"),
            ("status IN ()", "The IN list is empty", 11, ")"),
            ("status IN 'OK'", "Expected '(' to start the IN list", 10, "'OK'"),
            ("status IN ('OK' 'ERROR')", "Expected ',' or ')' in the IN list", 16, "'ERROR'"),
            ("status IN ('OK',)", "Expected a value", 16, ")"),
            ("status = OK", "Expected a value; quote text values", 9, "OK"),
            ("status = NULL", "Use IS NULL", 9, "NULL"),
            ("status IS 'OK'", "Expected NULL or NOT NULL after IS", 10, "'OK'"),
            ("status IS NOT 'OK'", "Expected NULL after IS NOT", 14, "'OK'"),
            ("feedback.x NOT = 1", "Expected LIKE, ILIKE or IN after NOT", 15, "="),
            ("feedback.x RLIKE 'a.*'", "RLIKE (regular expressions) is not supported", 11, "RLIKE"),
            ("status == 'OK'", "Unknown operator '=='", 7, "=="),
            ("status <> 'OK'", "Unknown operator '<>'", 7, "<>"),
            ("status ! 'OK'", "Unknown operator '!'", 7, "!"),
            ("feedback.x = 4abc", "Invalid number", 13, "4abc"),
            ("feedback.x = 1.2.3", "Invalid number", 13, "1.2.3"),
            ("feedback.x = 1e999", "Number out of range", 13, "1e999"),
            ("status = 'OK'; DROP TABLE x", "Unexpected character ';'", 13, ";"),
            ("tags.`` = 'a'", "Empty name between backticks", 5, "``"),
            ("tags. = 'a'", "Expected a name after '.'", 5, " "),
            ("", "The filter is empty", 0, ""),
            ("   ", "The filter is empty", 3, ""),
            ("status = 'a\x00b'", "Character U+0000 is not allowed", 11, "\x00"),
            ("status = 'a\ud800'", "Character U+D800 is not allowed", 11, "\ud800"),
        ],
    )
    def test_error_points_at_the_offending_token(self, text, message, position, token):
        with pytest.raises(FilterError) as raised:
            parse_filter(text)
        error = raised.value
        assert error.message.startswith(message)
        assert (error.position, error.token) == (position, token)

    def test_unknown_entity_lists_the_valid_ones(self):
        with pytest.raises(FilterError) as raised:
            parse_filter("feedbak.x = 'a'")
        assert str(raised.value) == (
            "Unknown field 'feedbak.x'; expected feedback., feedback_by., expectation., tags., metadata., trace., span., "
            "attributes. (at character 1: 'feedbak.x')"
        )

    def test_error_at_the_end_says_so(self):
        with pytest.raises(FilterError) as raised:
            parse_filter("status = 'OK' AND")
        assert str(raised.value) == "Expected a condition after AND (at the end of the filter)"

    def test_error_is_a_value_error(self):
        assert issubclass(FilterError, ValueError)

    def test_nesting_is_limited(self):
        parse_filter("(" * MAX_DEPTH + "status = 'OK'" + ")" * MAX_DEPTH)
        parse_filter("NOT " * MAX_DEPTH + "status = 'OK'")
        with pytest.raises(FilterError, match="more than 20 levels deep") as raised:
            parse_filter("(" * (MAX_DEPTH + 1) + "status = 'OK'" + ")" * (MAX_DEPTH + 1))
        assert raised.value.position == MAX_DEPTH
        with pytest.raises(FilterError, match="more than 20 levels deep"):
            parse_filter("NOT (" * 11 + "status = 'OK'" + ")" * 11)

    def test_length_is_limited_by_the_setting_read_at_call_time(self, settings):
        settings.FEEDBACKHUB_MAX_FILTER_LENGTH = 20
        parse_filter("status = 'ERROR_123'")  # exactly 20 characters
        with pytest.raises(FilterError, match="is 21 characters long; the limit is 20") as raised:
            parse_filter("status = 'ERROR_1234'")
        assert (raised.value.position, raised.value.token) == (20, "'")


def test_fields_help_examples_parse():
    assert len(FIELDS_HELP) >= 10
    for example, explanation in FIELDS_HELP:
        parse_filter(example)
        assert explanation


# --- the recorded MLflow dataset (mlflow-protocol.md section 7) ----------------------------


def spans(*named, status="OK"):
    """A root span and children, given as (name, span_type) pairs; the root first."""
    start = 1_767_261_600_000_000_000
    result = []
    for index, (name, span_type) in enumerate(named):
        result.append(
            {
                "span_id": f"{index + 1:016x}",
                "parent_span_id": None if index == 0 else f"{1:016x}",
                "name": name,
                "span_type": span_type,
                "start_time_ns": start + index * 1_000_000,
                "end_time_ns": start + (index + 1) * 1_000_000,
                "status_code": status if index == len(named) - 1 else "OK",
            }
        )
    return result


@pytest.fixture
def recorded(db):
    """Traces A-D as recorded from mlflow 3.18; returns {letter: trace}."""
    experiment = make_experiment("feedback-demo")
    a = make_trace(
        experiment,
        spans=spans(("answer_question", "CHAIN"), ("retrieve_docs", "RETRIEVER"), ("chat_model", "CHAT_MODEL")),
        name="answer_question",
        request_time=T0,
        execution_time_ms=1500,
        state="OK",
        client_request_id="req-user_123-1",
        tags={"env": "demo", "reviewed": "true"},
        metadata={"mlflow.trace.user": "user_123", "mlflow.trace.session": "session-1"},
    )
    make_feedback(a, "user_satisfaction", True)
    make_feedback(a, "relevance", 0.6, source_type="LLM_JUDGE", source_id="gpt-judge")
    make_feedback(a, "rating", 4.0)
    make_feedback(a, "tone", "friendly")
    make_feedback(a, "faithfulness", None, error={"error_code": "JUDGE_TIMEOUT", "error_message": "timed out"})
    make_expectation(
        a, "expected_answer", "MLflow is an open source platform for managing the end-to-end ML lifecycle."
    )
    b = make_trace(
        experiment,
        spans=spans(("answer_question", "CHAIN"), ("chat_model", "CHAT_MODEL")),
        name="answer_question",
        request_time=T0 + timedelta(minutes=1),
        execution_time_ms=800,
        state="OK",
        client_request_id="req-user_456-1",
        tags={"env": "prod"},
        metadata={"mlflow.trace.user": "user_456"},
    )
    make_feedback(b, "user_satisfaction", False)
    c = make_trace(
        experiment,
        spans=spans(("answer_question", "CHAIN"), ("chat_model", "CHAT_MODEL"), status="ERROR"),
        name="answer_question",
        request_time=T0 + timedelta(minutes=2),
        execution_time_ms=2000,
        state="ERROR",
    )
    make_feedback(c, "user_satisfaction", False)
    d = make_trace(
        experiment,
        spans=spans(("inline_demo", "CHAIN")),
        name="inline_demo",
        request_time=T0 + timedelta(minutes=3),
        execution_time_ms=10,
        state="OK",
    )
    make_feedback(d, "inline_check", True, source_type="CODE", source_id="inline")
    return {"A": a, "B": b, "C": c, "D": d}


def matching(recorded, text):
    """The letters of the recorded traces the filter selects, as a sorted string."""
    letters = {trace.pk: letter for letter, trace in recorded.items()}
    result = filter_traces(Trace.objects.filter(pk__in=letters), text)
    return "".join(sorted(letters[pk] for pk in result.values_list("pk", flat=True)))


@pytest.mark.django_db
class TestRecordedMlflowTable:
    """Every row of the table in mlflow-protocol.md section 7, with the MLflow result
    or, where FeedbackHub deliberately answers differently, a comment saying so."""

    @pytest.mark.parametrize(
        "text, expected",
        [
            ("feedback.user_satisfaction = 'true'", "A"),
            ("feedback.user_satisfaction != 'true'", "BC"),
            ("feedback.user_satisfaction IS NOT NULL", "ABC"),
            ("feedback.user_satisfaction IS NULL", "D"),
            ("feedback.relevance > 0.5", "A"),
            ("feedback.rating > 3", "A"),
            ("feedback.rating = '4'", ""),  # the stored JSON is 4.0
            ("feedback.rating = '4.0'", "A"),
            ("feedback.tone = 'friendly'", "A"),
            ("feedback.tone LIKE '%fri%'", "A"),
            ("feedback.tone LIKE '\"fri%'", "A"),
            ("feedback.faithfulness IS NOT NULL", "A"),  # error-only feedback counts as present
            (
                "expectation.expected_answer = "
                "'MLflow is an open source platform for managing the end-to-end ML lifecycle.'",
                "A",
            ),
            ("expectation.expected_answer LIKE '%lifecycle%'", "A"),
            ("expectation.expected_answer IS NOT NULL", "A"),
            ("attributes.status = 'OK'", "ABD"),
            ("trace.status = 'OK'", "ABD"),
            ("status = 'OK'", "ABD"),
            ("status = 'ERROR'", "C"),
            ("tags.env = 'demo'", "A"),
            ("tags.`mlflow.traceName` = 'answer_question'", "ABC"),
            ("tag.reviewed = 'true'", "A"),
            ("trace.name = 'answer_question'", "ABC"),
            ("metadata.`mlflow.trace.user` = 'user_123'", "A"),
            ("request_metadata.`mlflow.trace.user` = 'user_123'", "A"),
            (f"trace.timestamp_ms > {T0_MS}", "BCD"),
            ("trace.execution_time_ms >= 0", "ABCD"),
            (f"timestamp >= {T0_MS}", "ABCD"),
            (f"trace.end_time_ms > {T0_MS + 60_000}", "BCD"),
            (f"trace.end_time > {T0_MS + 60_000}", "BCD"),
            ("execution_time > 1000", "AC"),
            ("trace.client_request_id LIKE 'req-user_123%'", "A"),
            ("span.type = 'RETRIEVER'", "A"),
            ("span.name = 'chat_model'", "ABC"),
            ("feedback.user_satisfaction = 'true' AND tags.env = 'demo'", "A"),
        ],
    )
    def test_mlflow_result(self, recorded, text, expected):
        assert matching(recorded, text) == expected

    @pytest.mark.parametrize(
        "text, expected",
        [
            # MLflow: 400 (quote booleans). Here unquoted true/false match booleans.
            ("feedback.user_satisfaction = true", "A"),
            # MLflow: 400 (quote values with =). Here unquoted numbers compare numerically.
            ("feedback.rating = 4", "A"),
            # MLflow: nothing (LIKE sees the JSON quotes). Here LIKE also matches the raw string.
            ("feedback.tone LIKE 'fri%'", "A"),
            # MLflow: 400 (only AND).
            ("feedback.user_satisfaction = 'true' OR status = 'ERROR'", "AC"),
        ],
    )
    def test_deliberate_deviations(self, recorded, text, expected):
        assert matching(recorded, text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "assessment.x = 'a'",
            "assessments.x = 'a'",
            "trace.state = 'OK'",
            "issue.id = 'iss-123'",
            "span.content LIKE '%open source%'",
            "trace.text ILIKE '%mlflow%'",
        ],
    )
    def test_rejected_with_a_filter_error(self, recorded, text):
        with pytest.raises(FilterError):
            matching(recorded, text)

    def test_run_id_matches_the_source_run_or_a_link(self, recorded):
        """As in MLflow's `search_traces(run_id=…)`: metadata mlflow.sourceRun or a trace ↔ run link."""
        a, b = recorded["A"], recorded["B"]
        run = Run.objects.create(experiment=a.experiment)
        Trace.objects.filter(pk=a.pk).update(metadata={**a.metadata, "mlflow.sourceRun": run.run_id})
        RunTrace.objects.create(run=run, trace=b)
        assert matching(recorded, f"run_id = '{run.run_id}'") == "AB"
        assert matching(recorded, f"attributes.run_id = '{run.run_id}' AND status = 'OK'") == "AB"
        assert matching(recorded, "trace.run_id IS NULL") == "CD"
        assert matching(recorded, "run_id LIKE 'nothing%'") == ""


@pytest.mark.django_db
class TestExtensions:
    @pytest.mark.parametrize(
        "text, expected",
        [
            ("status = 'ERROR' OR tags.env = 'demo'", "AC"),
            ("(status = 'ERROR' OR tags.env = 'demo') AND feedback.tone IS NOT NULL", "A"),
            ("status = 'ERROR' OR tags.env = 'demo' AND feedback.tone IS NULL", "C"),
            ("NOT status = 'OK'", "C"),
            ("NOT (status = 'OK' OR feedback.user_satisfaction = false)", ""),
            ("NOT NOT status = 'ERROR'", "C"),
            ("NOT tags.env = 'demo'", "BCD"),  # traces without the tag too
            ("tags.env != 'demo'", "B"),  # only traces whose tag differs
            ("tags.env IS NULL", "CD"),
            ("tags.env IS NOT NULL", "AB"),
            ("tags.env IN ('demo', 'prod')", "AB"),
            ("tags.env NOT IN ('demo')", "B"),
            ("tags.env LIKE 'de%'", "A"),
            ("tags.env LIKE 'DE%'", ""),
            ("tags.env ILIKE 'DE%'", "A"),
            ("tags.env NOT LIKE 'de%'", "B"),
            ("tag.reviewed = true", "A"),
            ("feedback.user_satisfaction = false", "BC"),
            ("feedback.user_satisfaction != true", "BC"),
            ("feedback.user_satisfaction = 'false'", "BC"),
            ("feedback.user_satisfaction = 1", ""),  # booleans are not numbers
            ("feedback.user_satisfaction > 0", ""),
            ("feedback.inline_check = TRUE", "D"),
            ("feedback.rating = 4.0", "A"),
            ("feedback.rating >= 4", "A"),
            ("feedback.rating < 4", ""),
            ("feedback.rating != 4", ""),
            ("feedback.rating != 5", "A"),
            ("feedback.rating > '3'", "A"),
            ("feedback.relevance <= 0.6", "A"),
            ("feedback.relevance < 0.6", ""),
            ("feedback.rating = true", ""),
            ("feedback.rating IN (3, 4)", "A"),
            ("feedback.tone IN ('neutral', 'friendly')", "A"),
            ("feedback.tone NOT IN ('neutral', 'friendly')", ""),
            ("feedback.tone NOT IN ('neutral')", "A"),
            ("feedback.user_satisfaction IN (true, 'x')", "A"),
            ("feedback.user_satisfaction NOT IN (true)", "BC"),
            ("feedback.tone ILIKE 'FRI%'", "A"),
            ("feedback.tone LIKE 'FRI%'", ""),
            ("feedback.tone LIKE 'friendl_'", "A"),
            ("feedback.tone NOT LIKE 'x%'", "A"),
            ("feedback.tone = '\"friendly\"'", "A"),
            ("feedback.faithfulness IS NULL", "BCD"),
            ("feedback.faithfulness = 'x'", ""),
            ("feedback.faithfulness != 'x'", ""),  # error-only feedback has no value to differ
            ("feedback.expected_answer IS NOT NULL", ""),  # an expectation is not feedback
            ("expectation.tone IS NOT NULL", ""),
            ("FEEDBACK.tone = 'friendly'", "A"),
            ("trace.user_id = 'user_123'", "A"),
            ("trace.session_id = 'session-1'", "A"),
            ("trace.session_id IS NULL", "BCD"),
            ("trace.session_id != 'other'", "A"),
            ("trace.client_request_id IS NULL", "CD"),
            ("trace.client_request_id != 'req-user_123-1'", "B"),
            ("NOT trace.client_request_id = 'req-user_123-1'", "BCD"),
            ("trace.client_request_id IN ('req-user_123-1', 'req-user_456-1')", "AB"),
            ("status IN ('ERROR', 'IN_PROGRESS')", "C"),
            ("status NOT IN ('ERROR')", "ABD"),
            ("trace.name LIKE 'answer\\_%'", "ABC"),
            ("trace.name ILIKE '%DEMO'", "D"),
            ("span.type = 'CHAT_MODEL'", "ABC"),
            ("span.type != 'CHAIN'", "ABC"),  # has some span of another type
            ("span.status = 'ERROR'", "C"),
            ("span.name LIKE 'retr%'", "A"),
            ("span.name IN ('inline_demo', 'retrieve_docs')", "AD"),
            ("span.name NOT IN ('answer_question', 'chat_model')", "AD"),
            ("span.type = 'RETRIEVER' AND span.name = 'chat_model'", "A"),
            (f"trace.timestamp_ms = {T0_MS}", "A"),
            (f"trace.timestamp_ms = {T0_MS + 1}", ""),
            (f"trace.timestamp_ms != {T0_MS}", "BCD"),
            (f"trace.timestamp_ms < {T0_MS}", ""),
            (f"trace.timestamp_ms <= {T0_MS}", "A"),
            (f"trace.timestamp_ms > {T0_MS - 1}", "ABCD"),
            (f"trace.timestamp_ms >= {T0_MS + 1}", "BCD"),
            (f"trace.timestamp_ms < '{T0_MS + 60_001}'", "AB"),
            (f"trace.end_time_ms = {T0_MS + 1500}", "A"),
            (f"trace.end_time_ms <= {T0_MS + 1499}", ""),
            ("trace.execution_time_ms = 800", "B"),
            ("trace.execution_time_ms != 800", "ACD"),
            ("trace.execution_time_ms IN (10, 800)", "BD"),
            ("trace.execution_time_ms NOT IN (10, 800)", "AC"),
            ("trace.execution_time_ms < 800", "D"),
            ("trace.execution_time_ms IS NULL", ""),
        ],
    )
    def test_result(self, recorded, text, expected):
        assert matching(recorded, text) == expected

    def test_trace_id_and_request_id(self, recorded):
        trace_id = recorded["B"].trace_id
        assert matching(recorded, f"trace.trace_id = '{trace_id}'") == "B"
        assert matching(recorded, f"request_id IN ('{trace_id}', 'tr-0')") == "B"

    def test_overridden_feedback_is_not_searched(self, recorded):
        relevance = recorded["A"].assessments.get(name="relevance")
        override = assessment_services.override_feedback(
            assessment=relevance, actor=SYSTEM, channel="api", value=0.95, source_id="reviewer"
        )
        assert matching(recorded, "feedback.relevance = '0.6'") == ""
        assert matching(recorded, "feedback.relevance < 0.7") == ""
        assert matching(recorded, "feedback.relevance >= 0.9") == "A"
        assert matching(recorded, "feedback.relevance IS NOT NULL") == "A"

        assessment_services.delete_assessment(assessment=override, actor=SYSTEM, channel="api")
        assert matching(recorded, "feedback.relevance = '0.6'") == "A"
        assert matching(recorded, "feedback.relevance >= 0.9") == ""

    def test_several_raters_match_once(self, recorded):
        """Two matching feedbacks and two matching spans still give the trace once."""
        make_feedback(recorded["A"], "user_satisfaction", True, source_id="user_999")
        text = "feedback.user_satisfaction = true AND span.type IN ('CHAIN', 'CHAT_MODEL')"
        assert list(filter_traces(Trace.objects.all(), text)) == [recorded["A"]]

    def test_missing_feedback_is_null_but_an_overridden_one_is_replaced(self, recorded):
        assert matching(recorded, "feedback.relevance IS NULL") == "BCD"

    def test_blank_filter_changes_nothing(self, recorded):
        queryset = Trace.objects.filter(experiment=recorded["A"].experiment)
        assert filter_traces(queryset, None) is queryset
        assert filter_traces(queryset, "  \n ") is queryset

    def test_composes_with_other_filters_and_ordering(self, recorded):
        queryset = Trace.objects.filter(state="OK").order_by("-request_time")
        result = filter_traces(queryset, "span.name = 'chat_model' OR feedback.inline_check IS NOT NULL")
        assert list(result) == [recorded["D"], recorded["B"], recorded["A"]]

    def test_one_query(self, recorded, django_assert_num_queries):
        text = (
            "(feedback.user_satisfaction = 'true' OR feedback.rating > 3) AND NOT span.status = 'ERROR' "
            "AND tags.env IN ('demo', 'prod') AND expectation.expected_answer LIKE '%ML%' "
            f"AND trace.end_time_ms > {T0_MS}"
        )
        with django_assert_num_queries(1):
            assert len(filter_traces(Trace.objects.all(), text)) == 1

    @pytest.mark.parametrize("example", [example for example, _ in FIELDS_HELP])
    def test_fields_help_examples_run(self, recorded, example):
        matching(recorded, example)


# --- assessment values of every JSON type, the same on both databases ---------------------


VALUES = {
    "true": True,
    "false": False,
    "one": 1,
    "one_float": 1.0,
    "zero": 0,
    "four_and_a_half": 4.5,
    "minus_two": -2,
    "friendly": "friendly",
    "cafe": "café",
    "quoted": 'say "hi"',
    "backslash": "back\\slash",
    "string_true": "true",
    "string_number": "4.0",
    "empty": "",
    "multiline": "multi\nline",
    "percent": "100%",
    "list": [1, 2],
    "object": {"a": 1},
    "error_only": None,
}


@pytest.fixture
def valued(db):
    """One trace per value, named after its key in VALUES, each with feedback `v`."""
    experiment = make_experiment()
    for label, value in VALUES.items():
        trace = make_trace(experiment, name=label)
        error = {"error_code": "FAILED"} if value is None else None
        make_feedback(trace, "v", value, error=error)
    return experiment


def labels(experiment, text):
    result = filter_traces(Trace.objects.filter(experiment=experiment), text)
    return sorted(result.values_list("name", flat=True))


@pytest.mark.django_db
class TestValueTypes:
    @pytest.mark.parametrize(
        "text, expected",
        [
            ("feedback.v = 'true'", ["string_true", "true"]),
            ("feedback.v = true", ["true"]),
            ("feedback.v = false", ["false"]),
            ("feedback.v = 1", ["one", "one_float"]),
            ("feedback.v = '1'", ["one"]),
            ("feedback.v = '1.0'", ["one_float"]),
            ("feedback.v = '4.0'", ["string_number"]),
            ("feedback.v = 4", []),
            ("feedback.v > 0", ["four_and_a_half", "one", "one_float"]),
            ("feedback.v < 0", ["minus_two"]),
            ("feedback.v <= 0", ["minus_two", "zero"]),
            ("feedback.v = -2", ["minus_two"]),
            ("feedback.v = 'café'", ["cafe"]),
            ("feedback.v LIKE 'caf_'", ["cafe"]),
            ("feedback.v LIKE '\"caf%\"'", ["cafe"]),
            ("feedback.v = 'say \"hi\"'", ["quoted"]),
            ("feedback.v LIKE '%\"hi\"%'", ["quoted"]),
            ("feedback.v = 'back\\\\slash'", ["backslash"]),
            ("feedback.v LIKE 'back\\\\\\\\%'", ["backslash"]),
            ("feedback.v = ''", ["empty"]),
            ("feedback.v = '\"\"'", ["empty"]),
            ("feedback.v LIKE 'multi_line'", ["multiline"]),
            ("feedback.v LIKE 'multi%'", ["multiline"]),
            ("feedback.v LIKE '100\\%'", ["percent"]),
            ("feedback.v LIKE '1%'", ["one", "one_float", "percent"]),
            ("feedback.v LIKE '1_0'", ["one_float"]),
            ("feedback.v = '[1, 2]'", ["list"]),
            ("feedback.v LIKE '[%]'", ["list"]),
            ("feedback.v = '{\"a\": 1}'", ["object"]),
            ("feedback.v ILIKE 'FRIEND%'", ["friendly"]),
            ("feedback.v LIKE 'Friend%'", []),
            ("feedback.v LIKE '%'", sorted(set(VALUES) - {"error_only"})),
            ("feedback.v IN ('friendly', 4.5, false)", ["false", "four_and_a_half", "friendly"]),
            ("feedback.v IS NOT NULL", sorted(VALUES)),
            ("feedback.v != 'true'", sorted(set(VALUES) - {"true", "string_true", "error_only"})),
            ("feedback.v != 1", sorted(set(VALUES) - {"one", "one_float", "error_only"})),
            (
                "feedback.v NOT LIKE '%e%'",
                [
                    "backslash",
                    "cafe",
                    "empty",
                    "four_and_a_half",
                    "list",
                    "minus_two",
                    "object",
                    "one",
                    "one_float",
                    "percent",
                    "quoted",
                    "string_number",
                    "zero",
                ],
            ),
        ],
    )
    def test_result(self, valued, text, expected):
        assert labels(valued, text) == expected


@pytest.mark.django_db
class TestTagAndMetadataKeys:
    KEYS = ["a.b", "1", "café", 'say "hi"', "double__underscore", "back\\slash", "with space", "mlflow.trace.user"]

    @pytest.fixture
    def keyed(self, db):
        experiment = make_experiment()
        for index, key in enumerate(self.KEYS):
            make_trace(experiment, name=f"t{index}", tags={key: f"v{index}"}, metadata={key: f"m{index}"})
        return experiment

    @pytest.mark.parametrize("index", range(len(KEYS)))
    def test_any_key_in_backticks(self, keyed, index):
        key = self.KEYS[index].replace("`", "``")
        assert labels(keyed, f"tags.`{key}` = 'v{index}'") == [f"t{index}"]
        assert labels(keyed, f"metadata.`{key}` = 'm{index}'") == [f"t{index}"]
        assert labels(keyed, f"tags.`{key}` IS NOT NULL") == [f"t{index}"]
        assert len(labels(keyed, f"tags.`{key}` IS NULL")) == len(self.KEYS) - 1

    def test_unquoted_keys(self, keyed):
        assert labels(keyed, "tags.1 = 'v1'") == ["t1"]
        assert labels(keyed, "tags.double__underscore = 'v4'") == ["t4"]
        assert labels(keyed, "metadata.mlflow.trace.user LIKE 'm%'") == ["t7"]


@pytest.mark.django_db
class TestMissingColumnValues:
    def test_null_duration_and_blank_names(self):
        experiment = make_experiment()
        make_trace(experiment, spans=[], name="", request_time=T0)
        labelled = make_trace(experiment, spans=[], name="named", request_time=T0, execution_time_ms=5)
        result = lambda text: list(filter_traces(Trace.objects.filter(experiment=experiment), text))  # noqa: E731
        assert len(result("trace.execution_time_ms IS NULL")) == 1
        assert result("trace.execution_time_ms IS NOT NULL") == [labelled]
        assert result("trace.end_time_ms IS NOT NULL") == [labelled]
        assert result("trace.execution_time_ms != 1") == [labelled]
        assert len(result("NOT trace.execution_time_ms = 1")) == 2
        assert result("trace.name IS NOT NULL") == [labelled]
        assert len(result("trace.name IS NULL")) == 1
        assert result("trace.name != 'x'") == [labelled]


@pytest.mark.django_db
def test_longest_filters_run(recorded, settings):
    """Filters at the length limit stay within SQLite's expression depth and parameter limits."""
    limit = settings.FEEDBACKHUB_MAX_FILTER_LENGTH
    in_list = "tags.env IN (" + ",".join(["'x'"] * ((limit - 20) // 4)) + ",'demo')"
    assert len(in_list) <= limit and matching(recorded, in_list) == "A"
    feedback_in = "feedback.tone IN (" + ",".join(["1"] * ((limit - 40) // 2)) + ",'friendly')"
    assert len(feedback_in) <= limit and matching(recorded, feedback_in) == "A"
    or_chain = "(name=1)OR" * ((limit - 20) // 10) + "(status='ERROR')"
    assert len(or_chain) <= limit and matching(recorded, or_chain) == "C"
    and_chain = "span.name!='x' AND " * MAX_SUBQUERY_CONDITIONS + "status='ERROR'"
    assert matching(recorded, and_chain) == "C"
    trace_chain = "name!='x' AND " * ((limit - 20) // 14) + "status='ERROR'"
    assert len(trace_chain) <= limit and matching(recorded, trace_chain) == "C"


@pytest.mark.django_db
def test_too_many_subquery_conditions_are_refused_where_they_start(recorded):
    """Each condition on spans, feedback or expectations is a subquery the planner must join;
    past MAX_SUBQUERY_CONDITIONS the filter gets an error naming the first one too many."""
    text = " AND ".join(["span.name != 'x'", "feedback.rating > 1", "expectation.answer IS NOT NULL"] * 4)
    with pytest.raises(FilterError, match="more than 10 conditions on spans, feedback and expectations") as caught:
        matching(recorded, text)
    eleventh = [index for index in range(len(text)) if text.startswith(("span.", "feedback.", "expectation."), index)]
    assert caught.value.position == eleventh[MAX_SUBQUERY_CONDITIONS]


# --- properties ------------------------------------------------------------------------------

FIELD_NAMES = [
    "feedback.user_satisfaction",
    "feedback.relevance",
    "feedback.rating",
    "feedback.tone",
    "feedback.faithfulness",
    "feedback.`odd.name`",
    "expectation.expected_answer",
    "tags.env",
    "tag.`mlflow.traceName`",
    "tags.`1`",
    "metadata.`mlflow.trace.user`",
    "status",
    "trace.name",
    "trace.timestamp_ms",
    "trace.execution_time_ms",
    "trace.end_time_ms",
    "trace.client_request_id",
    "request_id",
    "trace.session_id",
    "trace.user_id",
    "span.name",
    "span.type",
    "span.status",
]
OPERATORS = [
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "NOT LIKE",
    "not ilike",
    "IN",
    "NOT IN",
    "IS NULL",
    "is not null",
]
TEXT = st.text(alphabet=st.sampled_from("aA fé\"'\\%_*?[]`\n.-1"), max_size=8)


def quoted(text: str, quote: str) -> str:
    if quote == "'":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'


VALUE = st.one_of(
    st.builds(quoted, TEXT, st.sampled_from(["'", '"'])),
    st.sampled_from(["'true'", "'4.0'", "'friendly'", "'%fri%'", "'demo'", "'OK'", f"'{T0_MS}'"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([str(T0_MS), "0", "4", "-1", "0.6", "1e3"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "FALSE"]),
)


@st.composite
def comparisons(draw) -> str:
    field_name = draw(st.sampled_from(FIELD_NAMES))
    operator = draw(st.sampled_from(OPERATORS))
    if operator.upper().endswith("NULL"):
        return f"{field_name} {operator}"
    if operator.upper().endswith("IN"):
        return f"{field_name} {operator} ({', '.join(draw(st.lists(VALUE, min_size=1, max_size=3)))})"
    return f"{field_name} {operator} {draw(VALUE)}"


FILTERS = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(" AND ".join),
        st.lists(children, min_size=2, max_size=3).map(" or ".join),
        children.map(lambda child: f"NOT {child}"),
        children.map(lambda child: f"({child})"),
    ),
    max_leaves=6,
)
GARBAGE = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "feedback.x",
                    "tags.`a.b`",
                    "status",
                    "AND",
                    "OR",
                    "NOT",
                    "(",
                    ")",
                    "=",
                    "!=",
                    "<",
                    "LIKE",
                    "IN",
                    "IS",
                    "NULL",
                    "'a'",
                    '"b',
                    "`",
                    "4",
                    "-1.5e3",
                    ",",
                    "true",
                    "\\",
                    "'",
                ]
            ),
            st.text(max_size=3),
        ),
        max_size=12,
    ).map(" ".join),
)
# database=None: no example files in the checkout; each run explores afresh.
PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def run(text: str) -> set[str] | None:
    """The matching trace ids, or None for a FilterError; any other exception fails the test."""
    try:
        return set(filter_traces(Trace.objects.all(), text).values_list("pk", flat=True))
    except FilterError as error:
        assert 0 <= error.position <= len(text)
        assert error.token == text[error.position : error.position + len(error.token)]
        return None


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(text=FILTERS)
def test_well_formed_filters_run_or_raise_filter_error(recorded, text):
    """...and NOT (filter) selects exactly the other traces (no SQL NULL leaks through a negation)."""
    result = run(text)
    if result is not None:
        everything = set(Trace.objects.values_list("pk", flat=True))
        assert run(f"NOT ({text})") == everything - result


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(text=GARBAGE)
def test_garbage_only_raises_filter_error(recorded, text):
    run(text)
