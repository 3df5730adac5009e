"""The filter language reads assessment types from the experiments' definitions.

Without a definition, `feedback.<name> = <literal>` compares by the literal's own type
(traces.filters). Where the searched experiments define the name, the literal is read as the
definition's type first:

- boolean: 'true' / 'false' / 'yes' / 'no' / '1' / '0' (any case, quoted or not) are the
  booleans, so `feedback.user_satisfaction = 'False'` or `= 0` finds thumbs down;
- number: a quoted number is a number, so `feedback.rating = '4'` also finds a stored 4.0;
- category with `multiple`: the value is a list, so `feedback.tags = 'billing'` means "the
  list holds billing" (and `!=`, IN, NOT IN accordingly).

The definitions live in the assessments app, which registers a source in `type_sources`
(traces cannot import assessments). Names defined differently in two searched experiments
keep the untyped comparison.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from .filters import And, Comparison, Literal, Node, Not, Or, compile_filter, parse_filter

BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class ValueType:
    """What a definition says about the values of one assessment name."""

    type: str  # boolean, number, category, text, json
    multiple: bool = False


# Callables (experiment ids) → {(kind, name): ValueType}, registered by assessments.apps.
type_sources: list[Callable[[Iterable[int]], dict[tuple[str, str], ValueType]]] = []


def types_for(experiment_ids: Iterable[int]) -> dict[tuple[str, str], ValueType]:
    types: dict[tuple[str, str], ValueType] = {}
    for source in type_sources:
        types.update(source(experiment_ids))
    return types


def filter_typed(queryset: QuerySet, text: str | None, experiment_ids: Iterable[int] = ()) -> QuerySet:
    """traces.filters.filter_traces, with literals typed by the experiments' definitions.
    Raises FilterError."""
    if text is None or not text.strip():
        return queryset
    node = parse_filter(text)
    types = types_for(experiment_ids) if experiment_ids else {}
    return queryset.filter(compile_filter(apply_types(node, types) if types else node))


def apply_types(node: Node, types: dict[tuple[str, str], ValueType]) -> Node:
    """The parsed filter with each assessment comparison's literals read as its definition's type."""
    if isinstance(node, And):
        return And(tuple(apply_types(child, types) for child in node.children))
    if isinstance(node, Or):
        return Or(tuple(apply_types(child, types) for child in node.children))
    if isinstance(node, Not):
        return Not(apply_types(node.child, types))
    value_type = types.get((node.field.entity, node.field.key))
    if value_type is None or node.value is None:
        return node
    if value_type.type == "category" and value_type.multiple:
        return _membership(node)
    convert = {"boolean": _as_boolean, "number": _as_number}.get(value_type.type)
    if convert is None or node.operator in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        return node
    if isinstance(node.value, tuple):
        return Comparison(node.field, node.operator, tuple(convert(literal) for literal in node.value))
    if node.operator not in ("=", "!="):
        return node
    return Comparison(node.field, node.operator, convert(node.value))


def _as_boolean(literal: Literal) -> Literal:
    if literal.type == "string" and literal.value.strip().lower() in BOOLEAN_WORDS:
        return Literal("boolean", BOOLEAN_WORDS[literal.value.strip().lower()], literal.position)
    if literal.type == "number" and literal.value in (0, 1):
        return Literal("boolean", literal.value == 1, literal.position)
    return literal


def _as_number(literal: Literal) -> Literal:
    if literal.type == "string":
        try:
            number = float(literal.value)
        except ValueError:
            return literal
        if number == number and number not in (float("inf"), float("-inf")):
            return Literal("number", number, literal.position)
    return literal


def _like_escaped(text: str) -> str:
    return "".join("\\" + char if char in "%_\\" else char for char in text)


def _membership(node: Comparison) -> Node:
    """`= x` on a list-valued category: the list holds x (its JSON text holds "x")."""

    def holds(literal: Literal, negated: bool) -> Comparison:
        pattern = "%" + _like_escaped(json.dumps(str(literal.value), ensure_ascii=False)) + "%"
        return Comparison(node.field, "NOT LIKE" if negated else "LIKE", Literal("string", pattern, literal.position))

    if node.operator in ("=", "!="):
        return holds(node.value, node.operator == "!=")
    if node.operator == "IN":
        return Or(tuple(holds(literal, False) for literal in node.value))
    if node.operator == "NOT IN":
        return And(tuple(holds(literal, True) for literal in node.value))
    return node
