"""The one validator of assessment input: every create (single, batch, held) and every
update (stored or held) checks its fields here, so a rule added here holds on every path.

`clean_create` checks a create's fields without touching the database; `clean_changes`
checks an update's; `check_for_experiment` is where rules that depend on the experiment
plug in (it runs once the experiment is known: on a single create after the trace lookup,
on a batch after the traces are read, on held feedback when it is attached).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError

from feedbackhub import values
from traces.models import SPAN_ID_RE

from ..models import Assessment

# Choices' .values is rebuilt on every access; membership checks on the hot paths use these.
SOURCE_TYPES = frozenset(Assessment.SourceType.values)
KINDS = frozenset(Assessment.Kind.values)
EDITABLE_FIELDS = ("name", "value", "error", "rationale", "metadata")

# Rules that depend on the experiment: callables (experiment_id, kind, fields) that raise
# ValidationError and may add columns to `fields` (the definitions' rule stamps
# `definition_version`). `fields` holds the cleaned create fields (or an update's resulting
# state). Registered by the apps that own the rules. A rule may have an `applies(experiment_ids,
# kind, fields)` attribute saying cheaply whether it can matter in those experiments; a rule
# without one always can.
EXPERIMENT_RULES: list[Callable[[int, str, dict], None]] = []


def check_for_experiment(experiment_id: int, kind: str, fields: dict) -> None:
    """Run the experiment's rules on one create's (or update's) fields; raises ValidationError."""
    for rule in EXPERIMENT_RULES:
        rule(experiment_id, kind, fields)


def check_before_experiment_known(experiment_ids, kind: str, fields: dict) -> bool:
    """For a write whose experiment is not known yet (held feedback, the one-statement create),
    among the actor's `experiment_ids`: when there is one, its rules run now (ValidationError)
    and the answer is True; with several, True only when no rule can matter in any of them
    (the rules then run once the experiment is known)."""
    if len(experiment_ids) == 1:
        check_for_experiment(next(iter(experiment_ids)), kind, fields)
        return True
    return not any(
        getattr(rule, "applies", None) is None or rule.applies(experiment_ids, kind, fields)
        for rule in EXPERIMENT_RULES
    )


def check_json(value, field: str) -> None:
    """Reject what JSON cannot carry faithfully (NaN, Infinity, NUL, lone surrogates, non-string
    keys, other types), naming the place (feedbackhub.values)."""
    values.check(value, field)

    def walk(item, depth: int):
        if depth > 32:
            raise ValidationError({field: "is nested more than 32 levels deep"})
        if item is None or isinstance(item, (bool, str, int)):
            return
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError({field: "must not contain NaN or Infinity"})
            return
        if isinstance(item, list):
            for child in item:
                walk(child, depth + 1)
            return
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValidationError({field: "object keys must be strings"})
                walk(child, depth + 1)
            return
        raise ValidationError({field: f"must be JSON (got {type(item).__name__})"})

    kind = type(value)
    if value is None or kind is bool or kind is int:
        return  # scalars (the common case) need no walk and are never too large
    if kind is str and len(value) * 6 + 2 <= settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        return  # even escaped to \\uXXXX, it fits
    walk(value, 0)
    if value is not None and len(json.dumps(value)) > settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        raise ValidationError({field: f"is larger than {settings.FEEDBACKHUB_MAX_VALUE_BYTES} bytes"})


def clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "An assessment needs a non-empty name."})
    if len(name) > 250:
        raise ValidationError({"name": f"is {len(name)} characters long; the limit is 250."})
    values.check(name, "name")
    return name.strip()


def clean_metadata(metadata) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError({"metadata": "must be an object of string keys to string values"})
    if len(metadata) > settings.FEEDBACKHUB_MAX_METADATA_ENTRIES:
        raise ValidationError({"metadata": f"has more than {settings.FEEDBACKHUB_MAX_METADATA_ENTRIES} entries"})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError({"metadata": f"values must be strings (key {key!r})"})
        if len(key) > 250:
            raise ValidationError({"metadata": f"key {key[:20]!r}… is longer than 250 characters"})
    values.check(metadata, "metadata")
    return metadata


def clean_error(error) -> dict | None:
    if error is None:
        return None
    if not isinstance(error, dict):
        raise ValidationError({"error": "must be an object with error_code, error_message, stack_trace"})
    unknown = set(error) - {"error_code", "error_message", "stack_trace"}
    if unknown:
        raise ValidationError({"error": f"unknown field {sorted(unknown)[0]!r}"})
    code = error.get("error_code")
    if not isinstance(code, str) or not code:
        raise ValidationError({"error": "error_code is required and must be a string"})
    for key in ("error_message", "stack_trace"):
        if error.get(key) is not None and not isinstance(error[key], str):
            raise ValidationError({"error": f"{key} must be a string"})
    cleaned = {key: error[key] for key in ("error_code", "error_message", "stack_trace") if error.get(key)}
    check_json(cleaned, "error")
    return cleaned


def clean_rationale(rationale) -> str:
    if rationale is None:
        return ""
    if not isinstance(rationale, str):
        raise ValidationError({"rationale": "must be a string"})
    if len(rationale) > settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        raise ValidationError(
            {
                "rationale": f"The rationale is {len(rationale):,} characters long; "
                f"the limit is {settings.FEEDBACKHUB_MAX_VALUE_BYTES:,}."
            }
        )
    values.check(rationale, "rationale")
    return rationale


def check_value(kind: str, value, error) -> None:
    check_json(value, "value")
    if kind == Assessment.Kind.EXPECTATION:
        if error is not None:
            raise ValidationError({"error": "An expectation cannot carry an error."})
        if value is None:
            raise ValidationError({"value": "An expectation needs a value."})
    elif value is None and error is None:
        raise ValidationError({"value": "Feedback needs a value or an error."})


def clean_span_id(span_id) -> str | None:
    """The span id's form (whether the span exists is the create's business)."""
    if span_id in (None, ""):
        return None
    if not isinstance(span_id, str) or not SPAN_ID_RE.match(span_id):
        raise ValidationError({"span_id": "must be 16 lowercase hex digits"})
    return span_id


def clean_create(
    *,
    kind: str,
    name,
    value=None,
    error=None,
    rationale="",
    source_type=Assessment.SourceType.HUMAN,
    source_id="",
    span_id=None,
    metadata=None,
    assessment_id=None,
    idempotency_key=None,
) -> dict:
    """A create's fields, checked and normalised (no query); raises ValidationError naming the field."""
    if kind not in KINDS:
        raise ValidationError({"kind": f"must be one of {', '.join(Assessment.Kind.values)}"})
    name = clean_name(name)
    error = clean_error(error)
    check_value(kind, value, error)
    if source_type not in SOURCE_TYPES:
        raise ValidationError({"source.source_type": f"must be one of {', '.join(Assessment.SourceType.values)}"})
    if not isinstance(source_id, str) or len(source_id) > 250:
        raise ValidationError({"source.source_id": "must be a string of at most 250 characters"})
    values.check(source_id, "source.source_id")
    if assessment_id is not None and (
        not isinstance(assessment_id, str) or not assessment_id or len(assessment_id) > 50
    ):
        raise ValidationError({"assessment_id": "must be a string of at most 50 characters"})
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "must be a string of 1 to 200 characters"})
    return {
        "name": name,
        "value": value,
        "error": error,
        "rationale": clean_rationale(rationale),
        "source_type": source_type,
        "source_id": source_id,
        "span_id": clean_span_id(span_id),
        "metadata": clean_metadata(metadata),
        "assessment_id": assessment_id,
        "idempotency_key": idempotency_key,
    }


def reject_fixed_fields(changes: dict) -> None:
    """An update may change only EDITABLE_FIELDS; raises ValidationError naming the others."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "cannot be changed" for field in sorted(unknown)})


def clean_changes(kind: str, state: dict, changes: dict) -> dict:
    """An update's changes, checked against the assessment's current `state` (its value and
    error); returns the cleaned changes. Raises ValidationError."""
    reject_fixed_fields(changes)
    cleaned = {}
    if "name" in changes:
        cleaned["name"] = clean_name(changes["name"])
    if "rationale" in changes:
        cleaned["rationale"] = clean_rationale(changes["rationale"])
    if "metadata" in changes:
        cleaned["metadata"] = clean_metadata(changes["metadata"])
    if "error" in changes:
        cleaned["error"] = clean_error(changes["error"])
    if "value" in changes:
        cleaned["value"] = changes["value"]
    if "value" in changes or "error" in changes:
        check_value(kind, cleaned.get("value", state.get("value")), cleaned.get("error", state.get("error")))
    return cleaned
