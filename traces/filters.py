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
client_request_id, trace_id, session_id, user_id, run_id; bare or after trace. / attributes.)
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
- Not supported (FilterError): RLIKE, span.content, trace.text, issue.<key>,
  and session-scoped assessments do not match the other traces of their session.
- Unquoted dotted keys (tags.mlflow.traceName) are accepted like backticked ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from django.apps import apps
from django.conf import settings
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

from .models import RunTrace, Span

__all__ = [
    "FilterError",
    "parse_filter",
    "compile_filter",
    "filter_traces",
    "FIELDS_HELP",
    "Field",
    "Literal",
    "Comparison",
    "And",
    "Or",
    "Not",
    "Node",
]

MAX_DEPTH = 20

FIELDS_HELP: list[tuple[str, str]] = [
    (
        "feedback.user_satisfaction = 'true'",
        "Quoted values compare as text: matches the boolean true and the string 'true'.",
    ),
    ("feedback.is_correct = true", "Unquoted true or false match boolean feedback only."),
    ("feedback.relevance > 0.5", "Unquoted numbers compare numeric feedback (= != < <= > >=)."),
    ("feedback.tone LIKE 'fri%'", "LIKE is case-sensitive, ILIKE is not; % is any text, _ one character."),
    ("feedback.tone IN ('friendly', 'neutral')", "Any of several values; NOT IN for none of them."),
    ("feedback.rating IS NULL", "Traces without valid feedback of that name; IS NOT NULL: with some (errors count)."),
    ("feedback.rating != 4", "Traces with rating feedback whose value is not 4 (traces without any do not match)."),
    ("expectation.expected_answer LIKE '%lifecycle%'", "Expectations (ground truth) work like feedback."),
    ("feedback.`answer.quality` >= 3", "Backticks quote names and keys with dots, spaces or other characters."),
    ("tags.env = 'demo'", "A tag's value; tags.env IS NULL for traces without that tag (also tag.env)."),
    ("metadata.`mlflow.trace.user` = 'user_123'", "A request metadata value (also request_metadata.)."),
    ("status = 'ERROR'", "Trace status: OK, ERROR or IN_PROGRESS (also trace.status, attributes.status)."),
    ("trace.name = 'answer_question'", "The trace name (also tags.`mlflow.traceName`)."),
    ("trace.timestamp_ms > 1767225600000", "Request time in milliseconds since 1970 (also trace.end_time_ms)."),
    ("trace.execution_time_ms >= 1000", "Duration in milliseconds (also execution_time)."),
    ("trace.session_id = 'session-1'", "Also trace.user_id, trace.client_request_id and trace.trace_id."),
    ("span.type = 'RETRIEVER'", "Traces with at least one such span; also span.name and span.status."),
    (
        "NOT (status = 'OK' OR tags.env = 'demo') AND feedback.rating < 3",
        "Combine with AND, OR, NOT and parentheses: NOT binds tightest, then AND, then OR.",
    ),
]


# --- errors --------------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter that cannot be parsed or does not make sense, pointing at the offending token.

    `position` is the 0-based character offset of `token` in the filter text; a
    problem at the end of the text has `position == len(text)` and an empty token.
    """

    def __init__(self, message: str, position: int, token: str):
        super().__init__(message, position, token)
        self.message = message
        self.position = position
        self.token = token

    def __str__(self) -> str:
        if not self.token:
            return f"{self.message} (at the end of the filter)"
        return f"{self.message} (at character {self.position + 1}: {self.token!r})"


# --- tokens --------------------------------------------------------------------------------

KEYWORDS = {"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL"}
COMPARISON_OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INTEGER_RE = re.compile(r"[-+]?[0-9]+")
_DIGITS = "0123456789"


@dataclass(frozen=True)
class Token:
    """One lexical token. `text` is as written; `value` is the decoded content:
    a tuple of name segments for words, the unescaped text for strings, int or float for numbers."""

    kind: str  # "word", "string", "number", "operator", "(", ")", ",", "end"
    text: str
    position: int
    value: object = None

    @property
    def keyword(self) -> str | None:
        """The upper-cased word if it could be a keyword (one segment, not in backticks)."""
        if self.kind == "word" and len(self.value) == 1 and not self.text.startswith("`"):
            return self.text.upper()
        return None


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens, ending with an "end" token. Raises FilterError."""
    tokens = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in "(),":
            token = Token(char, char, index)
        elif char in "'\"":
            token = _read_string(text, index)
        elif char in "=!<>":
            token = _read_operator(text, index)
        elif _starts_number(text, index):
            token = _read_number(text, index)
        elif char.isalpha() or char in "_`":
            token = _read_word(text, index)
        else:
            raise FilterError(f"Unexpected character {char!r}", index, char)
        tokens.append(token)
        index = token.position + len(token.text)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _read_string(text: str, start: int) -> Token:
    quote = text[start]
    chars = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            # Keep unknown escapes whole, so that LIKE patterns can escape % and _.
            chars.append(following if following in "\\'\"" else char + following)
            index += 2
        elif char == quote and text[index + 1 : index + 2] == quote:
            chars.append(quote)
            index += 2
        elif char == quote:
            return Token("string", text[start : index + 1], start, "".join(chars))
        else:
            chars.append(char)
            index += 1
    raise FilterError(f"Unterminated string: the closing {quote} is missing", start, text[start : start + 20])


def _read_operator(text: str, start: int) -> Token:
    pair = text[start : start + 2]
    if pair == "==":
        raise FilterError("Unknown operator '=='; use =", start, pair)
    if pair == "<>":
        raise FilterError("Unknown operator '<>'; use !=", start, pair)
    for operator in COMPARISON_OPERATORS:
        if text.startswith(operator, start):
            return Token("operator", operator, start)
    raise FilterError("Unknown operator '!'; use != or NOT", start, text[start])


def _starts_number(text: str, index: int) -> bool:
    rest = text[index : index + 3]
    if rest[:1] in ("+", "-"):
        rest = rest[1:]
    if rest[:1] == ".":
        rest = rest[1:]
    return rest[:1] != "" and rest[:1] in _DIGITS


def _read_number(text: str, start: int) -> Token:
    raw = _NUMBER_RE.match(text, start).group()
    end = start + len(raw)
    if end < len(text) and (text[end].isalnum() or text[end] in "_.`"):
        word_end = end
        while word_end < len(text) and (text[word_end].isalnum() or text[word_end] in "_.`-"):
            word_end += 1
        raise FilterError("Invalid number (quote text values: 'like this')", start, text[start:word_end])
    number = float(raw)
    if not math.isfinite(number):
        raise FilterError("Number out of range", start, raw)
    if _INTEGER_RE.fullmatch(raw) and len(raw) <= 20 and abs(number) < 2**63:
        return Token("number", raw, start, int(raw))
    return Token("number", raw, start, number)


def _read_word(text: str, start: int) -> Token:
    """A name such as `status`, `feedback.rating` or ``tags.`mlflow.traceName` ``."""
    segments = []
    index = start
    while True:
        if index < len(text) and text[index] == "`":
            segment, index = _read_backticks(text, index)
        else:
            end = index
            while end < len(text) and (text[end].isalnum() or text[end] in "_-"):
                end += 1
            if end == index:
                raise FilterError("Expected a name after '.'", index, text[index : index + 1])
            segment, index = text[index:end], end
        segments.append(segment)
        if index < len(text) and text[index] == ".":
            index += 1
            continue
        return Token("word", text[start:index], start, tuple(segments))


def _read_backticks(text: str, start: int) -> tuple[str, int]:
    chars = []
    index = start + 1
    while index < len(text):
        if text[index] == "`" and text[index + 1 : index + 2] == "`":
            chars.append("`")
            index += 2
        elif text[index] == "`":
            if not chars:
                raise FilterError("Empty name between backticks", start, "``")
            return "".join(chars), index + 1
        else:
            chars.append(text[index])
            index += 1
    raise FilterError("Unterminated name: the closing ` is missing", start, text[start : start + 20])


# --- the AST -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A resolved field. `entity` is feedback, expectation, tags, metadata, trace or span;
    `key` is the assessment name, tag/metadata key, trace attribute or span field."""

    entity: str
    key: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Literal:
    """A value as the field needs it: type "string", "number" (int or float) or "boolean"."""

    type: str
    value: str | int | float | bool
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Comparison:
    """`field operator value`; value is a Literal, a tuple of them (IN) or None (IS NULL)."""

    field: Field
    operator: str  # = != < <= > >= LIKE ILIKE "NOT LIKE" "NOT ILIKE" IN "NOT IN" "IS NULL" "IS NOT NULL"
    value: Literal | tuple[Literal, ...] | None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Comparison | And | Or | Not


# --- fields --------------------------------------------------------------------------------

ENTITIES = {
    "feedback": "feedback",
    "expectation": "expectation",
    "tags": "tags",
    "tag": "tags",
    "metadata": "metadata",
    "request_metadata": "metadata",
    "trace": "trace",
    "attributes": "trace",
    "attribute": "trace",
    "span": "span",
}
ENTITY_LIST = "feedback., expectation., tags., metadata., trace., span., attributes."

# Trace attributes (as written, lower-cased) -> canonical key.
TRACE_ATTRIBUTES = {
    "status": "status",
    "name": "name",
    "timestamp_ms": "timestamp_ms",
    "timestamp": "timestamp_ms",
    "execution_time_ms": "execution_time_ms",
    "execution_time": "execution_time_ms",
    "end_time_ms": "end_time_ms",
    "end_time": "end_time_ms",
    "client_request_id": "client_request_id",
    "trace_id": "trace_id",
    "request_id": "trace_id",
    "session_id": "session_id",
    "user_id": "user_id",
    "run_id": "run_id",
}
# Canonical text attributes -> Trace column; "" in these columns means "not set".
TRACE_TEXT_COLUMNS = {
    "status": "state",
    "name": "name",
    "client_request_id": "client_request_id",
    "trace_id": "trace_id",
    "session_id": "session_id",
    "user_id": "user_id",
}
SPAN_COLUMNS = {"name": "name", "type": "span_type", "status": "status_code"}

ALL_OPERATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "NOT LIKE",
    "NOT ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
)
TEXT_OPERATORS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")
# What each kind of field supports. IN on timestamps is left out: millisecond-exact lists are not useful.
OPERATORS_BY_KIND = {
    "assessment": ALL_OPERATORS,
    "text": TEXT_OPERATORS,
    "span": TEXT_OPERATORS[:-2],
    "number": ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"),
    "epoch_ms": ("=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL"),
}
# The positive form of each operator; a negated operator matches values for which its positive form fails.
POSITIVE = {"!=": "=", "NOT LIKE": "LIKE", "NOT ILIKE": "ILIKE", "NOT IN": "IN"}


def _field_kind(fld: Field) -> str:
    if fld.entity in ("feedback", "expectation"):
        return "assessment"
    if fld.entity == "span":
        return "span"
    if fld.entity == "trace" and fld.key == "execution_time_ms":
        return "number"
    if fld.entity == "trace" and fld.key in ("timestamp_ms", "end_time_ms"):
        return "epoch_ms"
    return "text"


def _resolve_field(token: Token) -> Field:
    """Turn a word token into a Field, or raise FilterError naming what is valid."""
    segments = token.value
    if len(segments) == 1:
        entity, key = "trace", segments[0]  # bare names are trace attributes, as in MLflow
        if not token.text.startswith("`") and key.lower() in ENTITIES:
            example = ENTITIES[key.lower()]
            raise FilterError(f"{key!r} needs a key, e.g. {example}.<name>", token.position, token.text)
    else:
        entity = ENTITIES.get(segments[0].lower())
        key = ".".join(segments[1:])
        if entity is None:
            raise FilterError(f"Unknown field {token.text!r}; expected {ENTITY_LIST}", token.position, token.text)

    if entity == "tags" and key == "mlflow.traceName":
        return Field("trace", "name", token.position)
    if entity == "trace":
        if key.lower() == "state":
            raise FilterError(
                "Invalid attribute key 'state'; the trace state is filtered as status (e.g. status = 'OK')",
                token.position,
                token.text,
            )
        if key.lower() not in TRACE_ATTRIBUTES:
            attributes = ", ".join(sorted(set(TRACE_ATTRIBUTES.values())))
            if len(segments) == 1:
                message = f"Unknown field {key!r}; expected {ENTITY_LIST} or a trace attribute ({attributes})"
            else:
                message = f"Unknown trace attribute {key!r}; expected one of {attributes}"
            raise FilterError(message, token.position, token.text)
        return Field("trace", TRACE_ATTRIBUTES[key.lower()], token.position)
    if entity == "span":
        if key.lower() not in SPAN_COLUMNS:
            raise FilterError(
                f"Unknown span field {key!r}; expected span.name, span.type or span.status",
                token.position,
                token.text,
            )
        return Field("span", key.lower(), token.position)
    return Field(entity, key, token.position)


# --- the parser ----------------------------------------------------------------------------


def parse_filter(text: str) -> Node:
    """Parse a filter into its AST. Raises FilterError for anything that is not a valid filter.

    Checks the length against settings.FEEDBACKHUB_MAX_FILTER_LENGTH and the nesting
    of parentheses and NOT against MAX_DEPTH.
    """
    limit = settings.FEEDBACKHUB_MAX_FILTER_LENGTH
    if len(text) > limit:
        raise FilterError(
            f"The filter is {len(text)} characters long; the limit is {limit}", limit, text[limit : limit + 10]
        )
    for index, char in enumerate(text):
        # Neither database stores these in text, so they could never match (PostgreSQL would even fail).
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise FilterError(f"Character U+{ord(char):04X} is not allowed", index, char)
    return _Parser(text).parse()


class _Parser:
    """Recursive descent over the tokens, one method per grammar rule (see the module docstring)."""

    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, message: str, token: Token | None = None) -> FilterError:
        token = token or self.token
        return FilterError(message, token.position, token.text)

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"The filter nests parentheses and NOT more than {MAX_DEPTH} levels deep", token)
        try:
            yield
        finally:
            self.depth -= 1

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.error("The filter is empty")
        node = self.or_expr()
        if self.token.kind == ")":
            raise self.error("Unbalanced ')': there is no '(' to close")
        if self.token.kind != "end":
            raise self.error("Expected AND, OR or the end of the filter")
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.token.keyword == "OR":
            self.advance()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while self.token.keyword == "AND":
            self.advance()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        if self.token.keyword == "NOT":
            with self.nested(self.advance()):
                return Not(self.not_expr())
        if self.token.kind == "(":
            opening = self.advance()
            with self.nested(opening):
                node = self.or_expr()
            if self.token.kind == "end":
                raise self.error("Unbalanced '(': the closing ')' is missing", opening)
            if self.token.kind != ")":
                raise self.error("Expected AND, OR or ')'")
            self.advance()
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.token
        if token.kind != "word" or token.keyword in KEYWORDS:
            previous = self.tokens[self.index - 1] if self.index else None
            if previous is not None and previous.keyword in ("AND", "OR", "NOT"):
                raise self.error(f"Expected a condition after {previous.keyword}")
            if token.kind == "end":
                raise self.error("Expected a condition (e.g. feedback.rating > 3)")
            raise self.error("Expected a field (e.g. feedback.rating, tags.env, status)")
        self.advance()
        fld = _resolve_field(token)
        operator, operator_token = self.operator(token)
        kind = _field_kind(fld)
        if operator not in OPERATORS_BY_KIND[kind]:
            raise self.error(
                f"{token.text} does not support {operator}; use {', '.join(OPERATORS_BY_KIND[kind])}", operator_token
            )
        if operator in ("IS NULL", "IS NOT NULL"):
            return Comparison(fld, operator, None)
        if operator in ("IN", "NOT IN"):
            return Comparison(fld, operator, tuple(_convert(kind, "=", item) for item in self.value_list()))
        return Comparison(fld, operator, _convert(kind, operator, self.value()))

    def operator(self, field_token: Token) -> tuple[str, Token]:
        """Read the operator after a field; returns its canonical name and its first token."""
        token = self.token
        if token.kind == "operator":
            return self.advance().text, token
        keyword = token.keyword
        if keyword in ("LIKE", "ILIKE", "IN"):
            return self.advance().keyword, token
        if keyword == "NOT":
            self.advance()
            if self.token.keyword not in ("LIKE", "ILIKE", "IN"):
                raise self.error("Expected LIKE, ILIKE or IN after NOT")
            return "NOT " + self.advance().keyword, token
        if keyword == "IS":
            self.advance()
            negated = self.token.keyword == "NOT"
            if negated:
                self.advance()
            if self.token.keyword != "NULL":
                raise self.error("Expected NULL after IS NOT" if negated else "Expected NULL or NOT NULL after IS")
            self.advance()
            return ("IS NOT NULL" if negated else "IS NULL"), token
        if keyword in ("RLIKE", "REGEXP"):
            raise self.error(f"{keyword} (regular expressions) is not supported; use LIKE or ILIKE")
        raise self.error(f"Expected an operator after {field_token.text} ({', '.join(ALL_OPERATORS)})")

    def value(self) -> Token:
        token = self.token
        if token.kind in ("string", "number") or token.keyword in ("TRUE", "FALSE"):
            return self.advance()
        if token.keyword == "NULL":
            raise self.error("Use IS NULL or IS NOT NULL to test for a missing value")
        if token.kind == "word":
            raise self.error("Expected a value; quote text values: 'like this'")
        raise self.error("Expected a value (a quoted string, a number, true or false)")

    def value_list(self) -> list[Token]:
        if self.token.kind != "(":
            raise self.error("Expected '(' to start the IN list, e.g. IN ('a', 'b')")
        self.advance()
        if self.token.kind == ")":
            raise self.error("The IN list is empty")
        items = [self.value()]
        while self.token.kind == ",":
            self.advance()
            items.append(self.value())
        if self.token.kind != ")":
            raise self.error("Expected ',' or ')' in the IN list")
        self.advance()
        return items


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _convert(kind: str, operator: str, token: Token) -> Literal:
    """The value token as the field kind and operator need it, or a FilterError at the token."""
    if token.kind == "word":
        type_, value = "boolean", token.keyword == "TRUE"
    else:
        type_, value = token.kind, token.value

    if kind in ("text", "span"):
        # Tags, metadata and text columns hold strings: `tag.reviewed = true` means 'true'
        # and `tags.version = 1.10` means '1.10', as written.
        if type_ == "boolean":
            value = "true" if value else "false"
        elif type_ == "number":
            value = token.text
        return Literal("string", value, token.position)

    if kind in ("number", "epoch_ms"):
        number = _as_number(type_, value)
        if number is None or not float(number).is_integer():
            raise FilterError("Expected a whole number of milliseconds", token.position, token.text)
        number = int(number)
        if kind == "epoch_ms":
            try:
                _EPOCH + timedelta(milliseconds=number + 1)
                _EPOCH + timedelta(milliseconds=number)
            except OverflowError:
                raise FilterError("Timestamp out of range", token.position, token.text) from None
        elif abs(number) >= 2**63:
            raise FilterError("Number out of range", token.position, token.text)
        return Literal("number", number, token.position)

    # Assessment values.
    if operator in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        if type_ != "string":
            raise FilterError(f"{operator} needs a quoted pattern, e.g. '%text%'", token.position, token.text)
        return Literal("string", value, token.position)
    if operator in ("<", "<=", ">", ">="):
        number = _as_number(type_, value)
        if number is None:
            raise FilterError(
                f"{operator} needs a number, e.g. feedback.rating {operator} 3", token.position, token.text
            )
        return Literal("number", number, token.position)
    return Literal(type_, value, token.position)


def _as_number(type_: str, value) -> int | float | None:
    """A number token's value, or a quoted string that holds a finite number; else None."""
    if type_ == "number":
        return value
    if type_ == "string" and _NUMBER_RE.fullmatch(value.strip()):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


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
    if fld.entity in ("tags", "metadata"):
        return _text_condition(JSONKeyText(fld.entity, fld.key), operator, value, blank_is_null=False)
    if fld.entity == "span":
        column = F(SPAN_COLUMNS[fld.key])
        spans = Span.objects.filter(trace_id=OuterRef("pk"))
        return Q(Exists(spans.filter(_text_condition(column, operator, value, blank_is_null=False))))
    if fld.key in TRACE_TEXT_COLUMNS:
        return _text_condition(F(TRACE_TEXT_COLUMNS[fld.key]), operator, value, blank_is_null=True)
    if fld.key == "run_id":
        return _run_id_condition(operator, value)
    if fld.key == "execution_time_ms":
        return _number_condition(F("execution_time_ms"), operator, value)
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
