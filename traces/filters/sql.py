"""The filter language compiled to SQL: a parsed filter becomes a `Q` on the Trace queryset
(column tests and EXISTS subqueries), identically on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.apps import apps
from django.db import NotSupportedError
from django.db.models import (
    Case,
    DurationField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Lookup,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Concat
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)

from ..models import RunTrace, Span
from .language import (
    _EPOCH,
    POSITIVE,
    SPAN_COLUMNS,
    TRACE_NUMBER_COLUMNS,
    TRACE_TEXT_COLUMNS,
    And,
    Comparison,
    Field,
    Literal,
    Node,
    Not,
    Or,
    parse_filter,
)

# --- SQL building blocks (PostgreSQL and SQLite) -----------------------------------------
#
# Both databases must give the same answers, so every construct whose SQL differs
# between them is written out once per vendor here.


class _VendorFunc(Func):
    """A Func written per database; other backends are refused rather than guessed."""

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError("The FeedbackHub filter language supports PostgreSQL and SQLite only.")


class JSONKeyText(_VendorFunc):
    """The text of one top-level key of a JSON object column; SQL NULL when the key is absent.

    Not KeyTextTransform: it reads keys that look like numbers ("1") as array
    indexes, and SQLite's json_extract path syntax cannot address keys with
    non-ASCII characters or double quotes (Django stores them \\u-escaped). SQLite's
    json_each decodes keys, so every key works there too.
    """

    output_field = TextField()

    def __init__(self, column: str, key: str):
        super().__init__(F(column))
        self.key = key

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} ->> %s::text)", (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(SELECT json_key.value FROM json_each({sql}) AS json_key WHERE json_key.key = %s)", (*params, self.key)


class JSONTypeOf(_VendorFunc):
    """The JSON type of a value: string, number, boolean, array, object or null (SQL NULL for SQL NULL)."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"jsonb_typeof({sql})", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"CASE json_type({sql}) WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
            f"WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string' "
            f"ELSE json_type({sql}) END",
            (*params, *params),
        )


class JSONValueText(_VendorFunc):
    """A JSON value as text: a string's content (no quotes), any other value as its JSON text
    (true, 4.0, [1, 2]); SQL NULL for null.

    Not Cast(value, TextField()): that gives a string's JSON text, which differs between the
    databases for non-ASCII text (SQLite keeps Django's \\u escapes, PostgreSQL does not).
    """

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} #>> '{{}}')", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        # SQLite keeps Django's json.dumps() text, which is what PostgreSQL prints for scalars.
        return (
            f"CASE json_type({sql}) WHEN 'text' THEN json_extract({sql}, '$') WHEN 'null' THEN NULL ELSE {sql} END",
            (*params, *params, *params),
        )


def _like_pieces(pattern: str) -> list[tuple[bool, str]]:
    """Split a LIKE pattern into (is_wildcard, char) pairs; a backslash makes the next character literal."""
    pieces = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            pieces.append((False, pattern[index + 1]))
            index += 2
            continue
        pieces.append((char in "%_", char))
        index += 1
    return pieces


def _sql_like_pattern(pattern: str) -> str:
    """The pattern for LIKE/ILIKE with backslash as the escape character."""
    return "".join(
        char if wildcard else ("\\" + char if char in "%_\\" else char) for wildcard, char in _like_pieces(pattern)
    )


def _glob_pattern(pattern: str) -> str:
    """The pattern for SQLite's GLOB: * and ? are the wildcards; [x] matches x literally."""
    return "".join(
        ("*" if char == "%" else "?") if wildcard else (f"[{char}]" if char in "*?[" else char)
        for wildcard, char in _like_pieces(pattern)
    )


class Like(Lookup):
    """Case-sensitive LIKE on both databases: PostgreSQL's LIKE, SQLite's GLOB
    (SQLite's own LIKE ignores ASCII case). Neither backtracks exponentially, as a
    translation to a regular expression could on SQLite (Python's re, in-process)."""

    lookup_name = "filter_like"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        raise NotSupportedError("The FeedbackHub filter language supports PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} LIKE %s", (*params, _sql_like_pattern(self.rhs))

    def as_sqlite(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} GLOB %s", (*params, _glob_pattern(self.rhs))


class ILike(Like):
    """Case-insensitive LIKE. SQLite folds ASCII letters only, PostgreSQL all letters."""

    lookup_name = "filter_ilike"

    def as_postgresql(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} ILIKE %s", (*params, _sql_like_pattern(self.rhs))

    def as_sqlite(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} LIKE %s ESCAPE '\\'", (*params, _sql_like_pattern(self.rhs))


# --- the compiler --------------------------------------------------------------------------


def filter_traces(queryset: QuerySet, text: str | None) -> QuerySet:
    """`queryset` (of Trace) narrowed by the filter `text`; unchanged when the text is blank.

    Raises FilterError. Every condition is a column test or an EXISTS subquery, so
    no trace appears twice.
    """
    if text is None or not text.strip():
        return queryset
    return queryset.filter(compile_filter(parse_filter(text)))


def compile_filter(node: Node) -> Q:
    """The Q (on Trace) for a parsed filter."""
    if isinstance(node, And):
        result = Q()
        for child in node.children:
            result &= compile_filter(child)
        return result
    if isinstance(node, Or):
        result = compile_filter(node.children[0])
        for child in node.children[1:]:
            result |= compile_filter(child)
        return result
    if isinstance(node, Not):
        return ~compile_filter(node.child)
    return _compile_comparison(node)


def _compile_comparison(comparison: Comparison) -> Q:
    fld, operator, value = comparison.field, comparison.operator, comparison.value
    if fld.entity in ("feedback", "expectation"):
        return _assessment_condition(fld, operator, value)
    if fld.entity == "feedback_by":
        return _rater_condition(fld, operator, value)
    if fld.entity in ("tags", "metadata"):
        return _text_condition(JSONKeyText(fld.entity, fld.key), operator, value, blank_is_null=False)
    if fld.entity == "span":
        column = F(SPAN_COLUMNS[fld.key])
        # Not also trace_request_time = OuterRef("request_time"): the planner takes the two equalities
        # as independent, expects almost no match and unique-ifies every matching span of every
        # month first (3 s instead of 30 ms on the bench data, docs/SCALING.md section 4).
        spans = Span.objects.filter(trace_id=OuterRef("pk"))
        return Q(Exists(spans.filter(_text_condition(column, operator, value, blank_is_null=False))))
    if fld.key in TRACE_TEXT_COLUMNS:
        return _text_condition(F(TRACE_TEXT_COLUMNS[fld.key]), operator, value, blank_is_null=True)
    if fld.key == "run_id":
        return _run_id_condition(operator, value)
    if fld.key in TRACE_NUMBER_COLUMNS:
        return _number_condition(F(TRACE_NUMBER_COLUMNS[fld.key]), operator, value)
    if fld.key == "timestamp_ms":
        return _epoch_ms_condition(F("request_time"), operator, value)
    return _epoch_ms_condition(_end_time(), operator, value)


def _run_id_condition(operator: str, value) -> Q:
    """run_id, as MLflow's server: the run in metadata `mlflow.sourceRun` (traces an evaluation
    produced) or a RunTrace link (existing traces `mlflow traces evaluate` scored)."""
    source_run = JSONKeyText("metadata", "mlflow.sourceRun")
    if operator in ("IS NULL", "IS NOT NULL"):
        linked = Q(Exists(RunTrace.objects.filter(trace_id=OuterRef("pk"))))
        present = _text_condition(source_run, "IS NOT NULL", value, blank_is_null=True) | linked
        return ~present if operator == "IS NULL" else present
    links = RunTrace.objects.filter(trace_id=OuterRef("pk"))
    linked = Q(Exists(links.filter(_text_condition(F("run_id"), operator, value, blank_is_null=True))))
    return _text_condition(source_run, operator, value, blank_is_null=True) | linked


def _end_time() -> Expression:
    """request_time + execution_time_ms, as a datetime (NULL without a duration)."""
    # Labelled IntegerField without a cast: Django's SQLite duration arithmetic rejects
    # BigIntegerField operands, and a SQL cast to integer could overflow on PostgreSQL.
    milliseconds = ExpressionWrapper(F("execution_time_ms"), output_field=IntegerField())
    duration = ExpressionWrapper(milliseconds * Value(timedelta(milliseconds=1)), output_field=DurationField())
    return F("request_time") + duration


def _combine(operator: str, value, match: Callable[[str, object], Q], present: Q) -> Q:
    """`present AND match` for a positive operator, `present AND NOT match` for a negated one.

    `match(positive_operator, value)` must never be SQL NULL where `present` holds, so
    that NOT (...) of the whole condition is its exact complement. For IN it gets the
    tuple of literals and answers with one IN (...) rather than an OR chain (SQLite
    limits expression depth to 1000).
    """
    positive = POSITIVE.get(operator, operator)
    matched = match(positive, value)
    return present & (~matched if positive != operator else matched)


def _text_condition(expression: Expression, operator: str, value, *, blank_is_null: bool) -> Q:
    """A condition on a text column or tag/metadata value."""
    present = Q(IsNull(expression, False))
    if blank_is_null:
        present &= ~Q(Exact(expression, ""))
    if operator == "IS NULL":
        return ~present
    if operator == "IS NOT NULL":
        return present

    def match(positive: str, value) -> Q:
        if positive == "IN":
            return Q(In(expression, [literal.value for literal in value]))
        if positive == "=":
            return Q(Exact(expression, value.value))
        if positive == "LIKE":
            return Q(Like(expression, value.value))
        return Q(ILike(expression, value.value))

    return _combine(operator, value, match, present)


_NUMBER_LOOKUPS = {"=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}


def _number_condition(expression: Expression, operator: str, value) -> Q:
    """A condition on an integer column."""
    present = Q(IsNull(expression, False))
    if operator == "IS NULL":
        return ~present
    if operator == "IS NOT NULL":
        return present

    def match(positive: str, value) -> Q:
        if positive == "IN":
            return Q(In(expression, [literal.value for literal in value]))
        return Q(_NUMBER_LOOKUPS[positive](expression, value.value))

    return _combine(operator, value, match, present)


def _epoch_ms_condition(expression: Expression, operator: str, value) -> Q:
    """A condition on a datetime compared as whole milliseconds since 1970.

    Stored times have microseconds; a time counts as the millisecond it falls in
    (`= X` is X <= t < X + 1 ms), as MLflow's integer timestamp_ms would.
    """
    present = Q(IsNull(expression, False))
    if operator == "IS NULL":
        return ~present
    if operator == "IS NOT NULL":
        return present

    def match(positive: str, literal: Literal) -> Q:
        start = _EPOCH + timedelta(milliseconds=literal.value)
        end = start + timedelta(milliseconds=1)
        if positive == "=":
            return Q(GreaterThanOrEqual(expression, start)) & Q(LessThan(expression, end))
        if positive == "<":
            return Q(LessThan(expression, start))
        if positive == "<=":
            return Q(LessThan(expression, end))
        if positive == ">":
            return Q(GreaterThanOrEqual(expression, end))
        return Q(GreaterThanOrEqual(expression, start))

    return _combine(operator, value, match, present)


def _assessment_condition(fld: Field, operator: str, value) -> Q:
    """EXISTS (a valid assessment of this kind and name on the trace whose value matches).

    The subquery's equality columns are the (trace, name, kind, valid) index.
    How a value matches (MLflow compatible; see the module docstring):
    - a quoted string equals the value's text or its JSON text: 'true' matches the
      boolean true, '4.0' a stored 4.0, 'friendly' and '"friendly"' the string
      "friendly". For strings the JSON text is the content in double quotes without
      escaping, so it is the same on both databases; lists and objects compare as
      JSON text, which PostgreSQL normalises (key order) and SQLite keeps as sent.
    - an unquoted number compares numeric values (not booleans) through numeric_value;
    - unquoted true/false match booleans only (the number 1 is not true);
    - LIKE/ILIKE match the text or the JSON text (MLflow: the JSON text only).
    """
    assessment_model = apps.get_model("assessments", "Assessment")
    # experiment_id is denormalised onto assessments: naming it lets PostgreSQL hash-join only the
    # experiment's assessments (assessment_exp_name) instead of every experiment's.
    rows = assessment_model.objects.filter(
        trace_id=OuterRef("pk"), experiment_id=OuterRef("experiment_id"), name=fld.key, kind=fld.entity, valid=True
    )
    if operator == "IS NULL":
        return ~Q(Exists(rows))
    if operator == "IS NOT NULL":
        return Q(Exists(rows))

    rows = rows.annotate(value_type=JSONTypeOf("value"), value_text=JSONValueText("value")).annotate(
        json_text=Case(
            When(value_type="string", then=Concat(Value('"'), F("value_text"), Value('"'), output_field=TextField())),
            default=F("value_text"),
            output_field=TextField(),
        )
    )

    def match(positive: str, value) -> Q:
        if positive == "IN":
            return _assessment_in(value)
        if positive in ("LIKE", "ILIKE"):
            lookup = Like if positive == "LIKE" else ILike
            return Q(lookup(F("value_text"), value.value)) | Q(lookup(F("json_text"), value.value))
        if value.type == "string":
            return Q(value_text=value.value) | Q(json_text=value.value)
        if value.type == "boolean":
            return Q(value_type="boolean", numeric_value=1.0 if value.value else 0.0)
        return Q(value_type="number") & Q(_NUMBER_LOOKUPS[positive](F("numeric_value"), float(value.value)))

    # Error-only feedback has no value: it neither equals nor differs from anything.
    return Q(Exists(rows.filter(_combine(operator, value, match, Q(value__isnull=False)))))


def _rater_condition(fld: Field, operator: str, value) -> Q:
    """feedback_by.<name>: EXISTS (valid feedback of that name on the trace whose source id
    matches); IS NULL: nobody gave any. Same (trace, name, kind, valid) index as feedback."""
    assessment_model = apps.get_model("assessments", "Assessment")
    rows = assessment_model.objects.filter(
        trace_id=OuterRef("pk"), experiment_id=OuterRef("experiment_id"), name=fld.key, kind="feedback", valid=True
    )
    if operator in ("IS NULL", "IS NOT NULL"):
        return ~Q(Exists(rows)) if operator == "IS NULL" else Q(Exists(rows))
    return Q(Exists(rows.filter(_text_condition(F("source_id"), operator, value, blank_is_null=False))))


def _assessment_in(literals: tuple[Literal, ...]) -> Q:
    """Any of the literals, grouped by type into at most three IN (...) tests."""
    strings = [literal.value for literal in literals if literal.type == "string"]
    numbers = [float(literal.value) for literal in literals if literal.type == "number"]
    booleans = [1.0 if literal.value else 0.0 for literal in literals if literal.type == "boolean"]
    groups = []
    if strings:
        groups.append(Q(value_text__in=strings) | Q(json_text__in=strings))
    if numbers:
        groups.append(Q(value_type="number", numeric_value__in=numbers))
    if booleans:
        groups.append(Q(value_type="boolean", numeric_value__in=booleans))
    matched = groups[0]  # the parser never makes an empty IN list
    for group in groups[1:]:
        matched |= group
    return matched
