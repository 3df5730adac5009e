"""The filter language's syntax: tokens, the AST, the fields and their kinds, the parser
(see traces/filters/__init__.py for the grammar and its meaning)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from django.conf import settings

MAX_DEPTH = 20
# Conditions on spans, feedback and expectations are each an EXISTS subquery, which PostgreSQL's
# planner joins: its planning time grows steeply with their number (and, for spans, with the
# number of monthly partitions: docs/SCALING.md, section 4). Past this many a filter is refused
# with a clear error instead of spending seconds in the planner.
MAX_SUBQUERY_CONDITIONS = 10
SUBQUERY_ENTITIES = frozenset({"span", "feedback", "feedback_by", "expectation"})

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
    (
        "NOT feedback_by.reviewer_verdict = 'alice'",
        "Who gave valid feedback of a name (its source id): here, traces alice has not rated.",
    ),
    ("expectation.expected_answer LIKE '%lifecycle%'", "Expectations (ground truth) work like feedback."),
    ("feedback.`answer.quality` >= 3", "Backticks quote names and keys with dots, spaces or other characters."),
    ("tags.env = 'demo'", "A tag's value; tags.env IS NULL for traces without that tag (also tag.env)."),
    ("metadata.`mlflow.trace.user` = 'user_123'", "A request metadata value (also request_metadata.)."),
    ("status = 'ERROR'", "Trace status: OK, ERROR or IN_PROGRESS (also trace.status, attributes.status)."),
    ("trace.name = 'answer_question'", "The trace name (also tags.`mlflow.traceName`)."),
    ("trace.timestamp_ms > 1767225600000", "Request time in milliseconds since 1970 (also trace.end_time_ms)."),
    ("trace.execution_time_ms >= 1000", "Duration in milliseconds (also execution_time)."),
    ("trace.total_tokens > 1000", "LLM tokens of the whole trace (traces without LLM usage have none)."),
    ("trace.cost >= 0.01", "LLM cost of the whole trace in US dollars, from the model price table."),
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
    # Set by a caller's resolver (parse_filter's `resolve`) for fields outside the trace model:
    # one of OPERATORS_BY_KIND's keys.
    kind: str | None = field(default=None, compare=False)


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
    # who gave valid feedback of a name: feedback_by.<name> = '<source id>' ("not rated by me" is
    # NOT feedback_by.reviewer_verdict = 'alice')
    "feedback_by": "feedback_by",
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
ENTITY_LIST = "feedback., feedback_by., expectation., tags., metadata., trace., span., attributes."

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
    "total_tokens": "total_tokens",
    "tokens": "total_tokens",
    "cost": "cost",
}
# Canonical numeric attributes -> Trace column (null: not known, e.g. a trace without LLM usage).
TRACE_NUMBER_COLUMNS = {"execution_time_ms": "execution_time_ms", "total_tokens": "total_tokens", "cost": "cost"}
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
    "decimal": ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"),
    "epoch_ms": ("=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL"),
}
# The positive form of each operator; a negated operator matches values for which its positive form fails.
POSITIVE = {"!=": "=", "NOT LIKE": "LIKE", "NOT ILIKE": "ILIKE", "NOT IN": "IN"}


def _field_kind(fld: Field) -> str:
    if fld.kind is not None:
        return fld.kind
    if fld.entity in ("feedback", "expectation"):
        return "assessment"
    if fld.entity == "span":
        return "span"
    if fld.entity == "trace" and fld.key == "cost":
        return "decimal"
    if fld.entity == "trace" and fld.key in TRACE_NUMBER_COLUMNS:
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


def parse_filter(text: str, *, resolve: Callable[[Token], Field] | None = None) -> Node:
    """Parse a filter into its AST. Raises FilterError for anything that is not a valid filter.

    `resolve` turns a field's word token into a Field for another model's fields (evaluation
    datasets: name, tags.<key>, created_time); by default the trace fields.

    Checks the length against settings.FEEDBACKHUB_MAX_FILTER_LENGTH, the nesting of
    parentheses and NOT against MAX_DEPTH and the conditions that are subqueries against
    MAX_SUBQUERY_CONDITIONS.
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
    return _Parser(text, resolve).parse()


class _Parser:
    """Recursive descent over the tokens, one method per grammar rule (see the module docstring)."""

    def __init__(self, text: str, resolve: Callable[[Token], Field] | None = None):
        self.resolve = resolve or _resolve_field
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        self.subqueries = 0

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
        fld = self.resolve(token)
        if fld.entity in SUBQUERY_ENTITIES:
            self.subqueries += 1
            if self.subqueries > MAX_SUBQUERY_CONDITIONS:
                raise self.error(
                    f"The filter has more than {MAX_SUBQUERY_CONDITIONS} conditions on spans, feedback and "
                    "expectations; combine values with IN (…) or narrow it in steps",
                    token,
                )
        operator, operator_token = self.operator(token)
        kind = _field_kind(fld)
        if operator not in OPERATORS_BY_KIND[kind]:
            raise self.error(
                f"{token.text} does not support {operator}; use {', '.join(OPERATORS_BY_KIND[kind])}", operator_token
            )
        if operator in ("IS NULL", "IS NOT NULL"):
            return Comparison(fld, operator, None)
        unit = "tokens" if fld.key == "total_tokens" else "milliseconds"
        if operator in ("IN", "NOT IN"):
            return Comparison(fld, operator, tuple(_convert(kind, "=", item, unit) for item in self.value_list()))
        return Comparison(fld, operator, _convert(kind, operator, self.value(), unit))

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


def _convert(kind: str, operator: str, token: Token, unit: str = "milliseconds") -> Literal:
    """The value token as the field kind and operator need it, or a FilterError at the token
    (`unit` names what a whole number counts, in the message)."""
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

    if kind == "decimal":
        number = _as_number(type_, value)
        if number is None:
            raise FilterError("Expected a number, e.g. trace.cost > 0.01", token.position, token.text)
        return Literal("number", float(number), token.position)

    if kind in ("number", "epoch_ms"):
        number = _as_number(type_, value)
        if number is None or not float(number).is_integer():
            raise FilterError(f"Expected a whole number of {unit}", token.position, token.text)
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
