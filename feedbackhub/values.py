"""One hygiene for the JSON values clients send, and for the ones already stored.

Three things a JSON document can carry that no database stores faithfully and no response can
send back: NUL characters (PostgreSQL refuses them in text and jsonb), lone surrogates such as
"\\ud800" (not Unicode: they cannot be encoded as UTF-8, so SQLite stored them escaped and every
response that showed them failed) and numbers that are not finite (NaN, ±Infinity, and literals
such as 1e400 that parse to infinity, and integers beyond the same ±1.8e308: not JSON, refused
by jsonb and by the response encoders, or overflowing every sum and chart made of them).

Two behaviours, one per kind of write (docs/RELIABILITY.md, "Hostile values"):

- **Refused** (`check`, `problem`): feedback and expectation values, rationales, names, metadata,
  tags set by a call, experiment names, the native trace API (span payloads included). The caller
  gets a 400 naming the field and the place inside the value (`value.answers[2]`).
- **Replaced and marked** (`scrubbed`, `scrubbed_span`): what instrumentation exports (OTLP spans,
  MLflow StartTrace and traces.json), which an app cannot correct and must not lose. NUL and lone
  surrogates become U+FFFD, non-finite numbers the strings "NaN", "Infinity", "-Infinity" (proto3
  JSON's spelling); a span whose payload was changed lists the changed places in its attribute
  `feedbackhub.replaced_values`.

Reading never fails because of a stored value: `StoredJSONDecoder`, the decoder of every JSON
column, applies the same replacement to rows written before this module existed.
"""

from __future__ import annotations

import json
import math
import re
import sys

from django.core.exceptions import ValidationError

REPLACEMENT = "\ufffd"
MAX_NUMBER = sys.float_info.max
MARK_ATTRIBUTE = "feedbackhub.replaced_values"
MAX_MARKED_PLACES = 20
SPAN_PAYLOAD_KEYS = ("name", "status_message", "inputs", "outputs", "attributes", "events")

NUL_PROBLEM = "must not contain NUL characters (\\u0000)"
SURROGATE_PROBLEM = "must not contain unpaired surrogates (\\ud800-\\udfff): text must be valid Unicode"
NUMBER_PROBLEM = "must not contain NaN or Infinity (numbers beyond ±1.8e308 are Infinity)"

# A NUL or a lone surrogate in a Python string (paired surrogates were already joined by the
# JSON parser into one code point, so any surrogate left is unpaired).
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    match = _BAD_CHARACTER.search(text)
    if match is None:
        return None
    return NUL_PROBLEM if match.group() == "\x00" else SURROGATE_PROBLEM


def _number_problem(number) -> str | None:
    """NaN and ±Infinity, and integers no float can hold (JSON readers turn them into Infinity)."""
    if type(number) is float:
        return None if math.isfinite(number) else NUMBER_PROBLEM
    if type(number) is int and abs(number) > MAX_NUMBER:
        return NUMBER_PROBLEM
    return None


def problem(value) -> tuple[str, str] | None:
    """The first hostile place in a JSON value as (path, what is wrong), or None.

    The path is relative to the value: "" for the value itself, "answers[2]", "meta.tags[0]";
    a bad object key is reported at the key ("meta{key}"). Non-JSON types are not this
    function's business (the callers' type checks decide them).
    """
    kind = type(value)
    if value is None or kind is bool:
        return None
    if kind is str:
        found = _text_problem(value)
        return None if found is None else ("", found)
    if kind is float or kind is int:
        found = _number_problem(value)
        return None if found is None else ("", found)
    return None if _clean(value) else _walk(value)


def _clean_text(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or _SURROGATE.search(text) is None)


def _clean(value) -> bool:
    """Whether a JSON value holds no hostile place: one walk with C-speed checks per node and no
    paths. Cheaper than encoding the value and searching the text: a long string costs one `in`
    and one isascii, and no regex runs over ASCII text.
    """
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if not _clean_text(item):
                return False
        elif kind is dict:
            for key, child in item.items():
                if type(key) is str and not _clean_text(key):
                    return False
                push(child)
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is float:
            if item - item != 0:  # inf - inf and nan - nan are nan
                return False
        elif kind is int and not -MAX_NUMBER <= item <= MAX_NUMBER:
            return False
    return True


def _walk(value) -> tuple[str, str] | None:
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            found = _text_problem(item)
            if found is not None:
                return path, found
        elif type(item) is float or type(item) is int:
            found = _number_problem(item)
            if found is not None:
                return path, found
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str):
                    found = _text_problem(key)
                    if found is not None:
                        return f"{path}{{{_printable(key)}}}", found
                children.append((child, f"{path}.{_printable(key)}" if path else _printable(key)))
            stack.extend(reversed(children))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(child, f"{path}[{index}]") for index, child in enumerate(item)]))
    return None


def _printable(key) -> str:
    text = str(key)[:40]
    return _BAD_CHARACTER.sub(REPLACEMENT, text)


def message(path: str, found: str) -> str:
    return found if not path else f"{found} (at {path})"


def check(value, field: str) -> None:
    """Raise ValidationError({field: …}) naming the place when `value` holds a hostile value."""
    found = problem(value)
    if found is not None:
        raise ValidationError({field: message(*found)})


# --- replacing -------------------------------------------------------------------------------


def _replacement_number(number: float) -> str:
    if number != number:
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _replace(item, path: str, places: list[str]):
    if isinstance(item, str):
        if _BAD_CHARACTER.search(item) is None:
            return item
        places.append(path)
        return _BAD_CHARACTER.sub(REPLACEMENT, item)
    if type(item) is float or type(item) is int:
        if _number_problem(item) is None:
            return item
        places.append(path)
        return _replacement_number(item)
    if isinstance(item, list):
        return [_replace(child, f"{path}[{index}]", places) for index, child in enumerate(item)]
    if isinstance(item, dict):
        result = {}
        for key, child in item.items():
            child_path = f"{path}.{_printable(key)}" if path else _printable(key)
            if isinstance(key, str) and _BAD_CHARACTER.search(key) is not None:
                places.append(child_path)
                key = _BAD_CHARACTER.sub(REPLACEMENT, key)
            result[key] = _replace(child, child_path, places)
        return result
    return item


def scrubbed(value, places: list[str] | None = None, path: str = ""):
    """`value` with every hostile place replaced (the value itself when it has none: the common
    case costs one `_clean` walk, no copy). Replaced places are appended to `places`."""
    if _clean(value):
        return value
    return _replace(value, path, places if places is not None else [])


def scrubbed_span(span: dict) -> dict:
    """A decoded span (OTLP, MLflow) with its payload scrubbed; when anything was replaced, its
    attributes list the places under MARK_ATTRIBUTE (at most MAX_MARKED_PLACES of them)."""
    if _clean([span.get(key) for key in SPAN_PAYLOAD_KEYS]):
        return span  # the common case: one walk of the payload
    places: list[str] = []
    changed = {}
    for key in SPAN_PAYLOAD_KEYS:
        if key in span:
            cleaned = scrubbed(span[key], places, key)
            if cleaned is not span[key]:
                changed[key] = cleaned
    if not places:
        return span
    span = {**span, **changed}
    attributes = span.get("attributes")
    attributes = dict(attributes) if isinstance(attributes, dict) else {}
    attributes[MARK_ATTRIBUTE] = places[:MAX_MARKED_PLACES]
    span["attributes"] = attributes
    return span


# --- reading ---------------------------------------------------------------------------------


class StoredJSONDecoder(json.JSONDecoder):
    """The decoder of every JSON column: a stored NUL, lone surrogate or non-finite number (rows
    from before the write paths refused them; SQLite could commit them, PostgreSQL's jsonb keeps
    only huge numbers) reads back replaced as `scrubbed` would replace it, so no page or response
    fails on it. Costs one `_clean` walk of the decoded value.
    """

    _shared = None

    def __new__(cls, **kwargs):
        # json.loads(text, cls=…) builds a decoder per call (Django's JSONField does, per value);
        # the default one is stateless and shared, as json.loads' own default decoder is.
        if kwargs:
            return super().__new__(cls)
        if cls._shared is None:
            shared = super().__new__(cls)
            json.JSONDecoder.__init__(shared)
            cls._shared = shared
        return cls._shared

    def __init__(self, **kwargs):
        if kwargs:
            super().__init__(**kwargs)

    def decode(self, s, *args, **kwargs):
        value = super().decode(s, *args, **kwargs)
        return value if _clean(value) else _replace(value, "", [])


def parsed_json(value, *, documents_only: bool = False):
    """Text that holds JSON → its value; anything else (text that is not JSON, or not text) as it
    is. With `documents_only`, only text that opens like a document ({, [ or ") is parsed, so
    "42" and "true" stay text: OpenTelemetry attributes carry JSON documents as strings beside
    plain strings."""
    if not isinstance(value, str) or (documents_only and value[:1] not in ("{", "[", '"')):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
