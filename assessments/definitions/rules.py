"""What a definition allows: its constraints checked when it is written (`clean_constraints`)
and values checked against one of its versions (`check`, `Rule`). Pure: no queries.

Messages name the definition, its version and the rule, e.g.
`helpfulness (v1) expects an integer from 1 to 5; got 7`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import jsonschema
from django.core.exceptions import ValidationError

TYPES = ("boolean", "number", "category", "text", "json")
# The constraints each type takes; anything else in a definition is refused.
CONSTRAINTS = {
    "boolean": (),
    "number": ("min", "max", "integer", "levels"),
    "category": ("options", "multiple"),
    "text": ("max_length",),
    "json": ("json_schema",),
}
ALL_CONSTRAINTS = tuple(dict.fromkeys(key for keys in CONSTRAINTS.values() for key in keys))
MAX_OPTIONS = 200
MAX_LEVELS = 101
# An integer scale this wide or narrower is shown as a row of buttons.
MAX_BUTTON_LEVELS = 11


def _is_number(value) -> bool:
    return type(value) in (int, float) and (type(value) is int or math.isfinite(value))


def _number_text(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def clean_constraints(type_: str, raw: dict) -> dict:
    """The constraints of a definition of type `type_`, normalised; ValidationError (keyed by
    constraint) for unknown keys, wrong shapes and contradictions such as min > max."""
    if type_ not in TYPES:
        raise ValidationError({"type": f"must be one of {', '.join(TYPES)}"})
    raw = {key: value for key, value in (raw or {}).items() if value is not None}
    unknown = [key for key in raw if key not in CONSTRAINTS[type_]]
    if unknown:
        raise ValidationError({unknown[0]: f"does not apply to a {type_} definition"})
    return _CLEANERS[type_](raw)


def _clean_boolean(raw: dict) -> dict:
    return {}


def _clean_number(raw: dict) -> dict:
    cleaned = {}
    integer = raw.get("integer", False)
    if not isinstance(integer, bool):
        raise ValidationError({"integer": "must be true or false"})
    for key in ("min", "max"):
        if key in raw:
            if not _is_number(raw[key]):
                raise ValidationError({key: "must be a number"})
            if integer and not float(raw[key]).is_integer():
                raise ValidationError({key: f"must be a whole number for an integer definition; got {raw[key]}"})
            cleaned[key] = int(raw[key]) if integer else raw[key]
    if "min" in cleaned and "max" in cleaned and cleaned["min"] > cleaned["max"]:
        raise ValidationError({"min": f"min ({cleaned['min']}) is greater than max ({cleaned['max']})"})
    cleaned["integer"] = integer
    levels = raw.get("levels")
    if levels:
        if not isinstance(levels, dict):
            raise ValidationError({"levels": 'must be an object of value to description, e.g. {"1": "Useless"}'})
        if len(levels) > MAX_LEVELS:
            raise ValidationError({"levels": f"has more than {MAX_LEVELS} entries"})
        parsed = []
        for key, text in levels.items():
            try:
                number = float(key)
            except (TypeError, ValueError):
                raise ValidationError({"levels": f"key {key!r} is not a number"}) from None
            if not math.isfinite(number):
                raise ValidationError({"levels": f"key {key!r} is not a number"})
            if integer and not number.is_integer():
                raise ValidationError({"levels": f"level {key} is not a whole number"})
            if "min" in cleaned and number < cleaned["min"] or "max" in cleaned and number > cleaned["max"]:
                raise ValidationError({"levels": f"level {key} is outside {cleaned.get('min')}..{cleaned.get('max')}"})
            if not isinstance(text, str):
                raise ValidationError({"levels": f"the description of level {key} must be a string"})
            parsed.append((number, _number_text(number), text))
        cleaned["levels"] = {key: text for _, key, text in sorted(parsed)}
    return cleaned


def _clean_category(raw: dict) -> dict:
    options = raw.get("options")
    if not isinstance(options, list) or not options:
        raise ValidationError({"options": "a category definition needs a non-empty list of options"})
    if len(options) > MAX_OPTIONS:
        raise ValidationError({"options": f"has more than {MAX_OPTIONS} options"})
    cleaned, seen = [], set()
    for index, option in enumerate(options):
        if isinstance(option, str):
            option = {"value": option}
        if not isinstance(option, dict) or set(option) - {"value", "label", "description"}:
            raise ValidationError(
                {"options": f"option {index} must be a string or an object with value, label, description"}
            )
        value = option.get("value")
        if not isinstance(value, str) or not value.strip():
            raise ValidationError({"options": f"option {index} needs a non-empty string value"})
        if value in seen:
            raise ValidationError({"options": f"option {value!r} is listed twice"})
        seen.add(value)
        entry = {"value": value}
        for key in ("label", "description"):
            if option.get(key) not in (None, ""):
                if not isinstance(option[key], str):
                    raise ValidationError({"options": f"the {key} of option {value!r} must be a string"})
                entry[key] = option[key]
        cleaned.append(entry)
    multiple = raw.get("multiple", False)
    if not isinstance(multiple, bool):
        raise ValidationError({"multiple": "must be true or false"})
    return {"options": cleaned, "multiple": multiple}


def _clean_text(raw: dict) -> dict:
    if "max_length" not in raw:
        return {}
    max_length = raw["max_length"]
    if type(max_length) is not int or max_length < 1:
        raise ValidationError({"max_length": "must be a positive integer"})
    return {"max_length": max_length}


def _clean_json(raw: dict) -> dict:
    if "json_schema" not in raw:
        return {}
    schema = raw["json_schema"]
    if not isinstance(schema, (dict, bool)):
        raise ValidationError({"json_schema": "must be a JSON Schema (an object)"})
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError({"json_schema": f"is not a valid JSON Schema: {exc.message}"}) from None
    return {"json_schema": schema}


_CLEANERS = {
    "boolean": _clean_boolean,
    "number": _clean_number,
    "category": _clean_category,
    "text": _clean_text,
    "json": _clean_json,
}


def _got(value) -> str:
    if type(value) is float and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # the MLflow protocol carries every number as a double
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


def _quoted_list(values: list[str], limit: int = 12) -> str:
    shown = ", ".join(json.dumps(value, ensure_ascii=False) for value in values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


@dataclass
class Rule:
    """One definition version compiled for checking values (what the per-worker cache keeps)."""

    name: str
    kind: str
    version: int
    type: str
    constraints: dict
    description: str = ""
    _validator: object = field(default=None, repr=False)
    _option_values: frozenset = field(default=frozenset(), repr=False)

    def __post_init__(self):
        if self.type == "category":
            self._option_values = frozenset(option["value"] for option in self.constraints.get("options", ()))
        elif self.type == "json" and "json_schema" in self.constraints:
            schema = self.constraints["json_schema"]
            self._validator = jsonschema.validators.validator_for(schema)(schema)

    @classmethod
    def of(cls, definition_version) -> Rule:
        """The rule of a DefinitionVersion (its definition loaded)."""
        definition = definition_version.definition
        return cls(
            name=definition.name,
            kind=definition.kind,
            version=definition_version.version,
            type=definition_version.type,
            constraints=definition_version.constraints or {},
            description=definition_version.description,
        )

    @property
    def label(self) -> str:
        return f"{self.name} (v{self.version})"

    def refuse(self, expects: str, value) -> ValidationError:
        return ValidationError({"value": f"{self.label} expects {expects}; got {_got(value)}"})

    def describe(self) -> str:
        """What the rule expects, as the messages say it (`an integer from 1 to 5`)."""
        if self.type == "boolean":
            return "true or false"
        if self.type == "number":
            c = self.constraints
            noun = "an integer" if c.get("integer") else "a number"
            low, high = c.get("min"), c.get("max")
            if low is not None and high is not None:
                return f"{noun} from {_number_text(low)} to {_number_text(high)}"
            if low is not None:
                return f"{noun} of at least {_number_text(low)}"
            if high is not None:
                return f"{noun} of at most {_number_text(high)}"
            return noun
        if self.type == "category":
            values = [option["value"] for option in self.constraints["options"]]
            if self.constraints.get("multiple"):
                return f"a list of distinct options from {_quoted_list(values)}"
            return f"one of {_quoted_list(values)}"
        if self.type == "text":
            limit = self.constraints.get("max_length")
            return f"text of at most {limit} characters" if limit else "text"
        return "JSON matching its schema" if self._validator is not None else "JSON"

    def check(self, value) -> None:
        """Raise ValidationError ({"value": message}) unless `value` fits this version."""
        kind = type(value)
        if self.type == "boolean":
            if kind is not bool:
                raise self.refuse("true or false", value)
        elif self.type == "number":
            if kind not in (int, float) or (kind is float and not math.isfinite(value)):
                raise self.refuse(self.describe(), value)
            c = self.constraints
            if (
                (c.get("integer") and kind is float and not value.is_integer())
                or ("min" in c and value < c["min"])
                or ("max" in c and value > c["max"])
            ):
                raise self.refuse(self.describe(), value)
        elif self.type == "category":
            if self.constraints.get("multiple"):
                if (
                    kind is not list
                    or not all(type(item) is str and item in self._option_values for item in value)
                    or len(set(value)) != len(value)
                ):
                    raise self.refuse(self.describe(), value)
            elif kind is not str or value not in self._option_values:
                raise self.refuse(self.describe(), value)
        elif self.type == "text":
            limit = self.constraints.get("max_length")
            if kind is not str:
                raise self.refuse(self.describe(), value)
            if limit and len(value) > limit:
                raise ValidationError({"value": f"{self.label} expects {self.describe()}; got {len(value)} characters"})
        elif self._validator is not None:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
            if error is not None:
                where = "/".join(str(part) for part in error.absolute_path)
                raise ValidationError(
                    {
                        "value": f"{self.label} expects JSON matching its schema; got {_got(value)}: "
                        f"{error.message}" + (f" (at /{where})" if where else "")
                    }
                )

    def check_kind(self, kind: str) -> None:
        if kind != self.kind:
            raise ValidationError({"name": f"{self.label} is defined as {self.kind}; it cannot be written as {kind}"})

    @property
    def levels(self) -> list[tuple[int, str]]:
        """(value, description) for each step of a small integer scale, else []."""
        c = self.constraints
        if (
            self.type != "number"
            or not c.get("integer")
            or c.get("min") is None
            or c.get("max") is None
            or c["max"] - c["min"] >= MAX_BUTTON_LEVELS
        ):
            return []
        descriptions = c.get("levels") or {}
        return [(step, descriptions.get(str(step), "")) for step in range(c["min"], c["max"] + 1)]


def check(definition_version, value) -> None:
    """Raise ValidationError unless `value` fits the DefinitionVersion (its definition loaded)."""
    Rule.of(definition_version).check(value)
