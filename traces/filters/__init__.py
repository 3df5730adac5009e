"""The one filter language of FeedbackHub.

The trace list search box, the native API (`?filter=`) and MLflow's
`search_traces` endpoint all use it. A filter such as

    feedback.user_satisfaction = 'true' AND (tags.env = 'demo' OR span.type = 'RETRIEVER')

is tokenized and parsed into a small AST (`parse_filter`), then compiled into a
`Q` for the Trace queryset (`compile_filter`, `filter_traces`).

Grammar (keywords are case-insensitive; NOT binds tighter than AND, AND tighter than OR):

    filter      := or_expr END
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := not_expr ("AND" not_expr)*
    not_expr    := "NOT" not_expr | "(" or_expr ")" | comparison
    comparison  := field ( ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                         | ["NOT"] ("LIKE" | "ILIKE") value
                         | ["NOT"] "IN" "(" value ("," value)* ")"
                         | "IS" ["NOT"] "NULL" )
    field       := name ("." name)*     a name is letters, digits, _ and -, or `any text in backticks`
    value       := 'text' | "text" | number | true | false

Inside quotes, \\' \\" and \\\\ stand for the quote or backslash, and a doubled quote
('') for the quote; other backslashes are kept, so LIKE patterns can escape % and _
('50\\%'). Fields: feedback.<name>, expectation.<name>, tags.<key>, metadata.<key>,
trace attributes (status, name, timestamp_ms, execution_time_ms, end_time_ms,
client_request_id, trace_id, session_id, user_id, run_id, total_tokens, cost; bare or after
trace. / attributes.)
and span.name / span.type / span.status. FIELDS_HELP lists examples for the UI.

Meaning:
- feedback.<name> and expectation.<name> match a trace that has at least one valid
  (not overridden) assessment of that kind and name whose value satisfies the
  comparison. IS NOT NULL: has one (error-only feedback counts); IS NULL: has none.
- span.<field> matches a trace that has at least one span satisfying the comparison.
- Negated comparisons (!=, NOT LIKE, NOT ILIKE, NOT IN) match when the field has a
  value that does not match: a trace without the tag, feedback or column value
  matches neither `= x` nor `!= x` (as in MLflow). NOT (...) is the plain complement.
- LIKE is case-sensitive and ILIKE is not on both databases; % is any text, _ one character.

Deviations from MLflow's search_traces (superset unless noted):
- OR, parentheses, NOT, IN / NOT IN on every field, NOT LIKE / NOT ILIKE, unquoted
  true/false and unquoted numbers with = and != on assessments (MLflow answers 400).
- LIKE/ILIKE on an assessment value also match a string's raw text: MLflow only
  matches the JSON text, so there `feedback.tone LIKE 'fri%'` finds nothing for
  "friendly" (the stored text starts with a quote); here it matches, and so do
  '%fri%' and '"fri%' (the JSON form), as in MLflow.
- At most MAX_SUBQUERY_CONDITIONS (10) conditions on span., feedback., feedback_by. and
  expectation. per filter: each is a subquery, and PostgreSQL plans their joins in time that
  grows steeply with their number (FilterError past it).
- Not supported (FilterError): RLIKE, span.content, trace.text, issue.<key>,
  and session-scoped assessments do not match the other traces of their session.
- Unquoted dotted keys (tags.mlflow.traceName) are accepted like backticked ones.
"""

from .language import (
    FIELDS_HELP,
    MAX_DEPTH,
    MAX_SUBQUERY_CONDITIONS,
    And,
    Comparison,
    Field,
    FilterError,
    Literal,
    Node,
    Not,
    Or,
    parse_filter,
)
from .sql import ILike, JSONKeyText, Like, compile_filter, filter_traces

__all__ = [
    "FilterError",
    "parse_filter",
    "compile_filter",
    "filter_traces",
    "FIELDS_HELP",
    "MAX_DEPTH",
    "MAX_SUBQUERY_CONDITIONS",
    "JSONKeyText",
    "Like",
    "ILike",
    "Field",
    "Literal",
    "Comparison",
    "And",
    "Or",
    "Not",
    "Node",
]
