"""Where the assessment write path asks the definitions: one check per create or update.

`check_fields` is the rule the assessments validator runs once the experiment is known (every
create: single, override, batch, held, and every update); it raises ValidationError naming the
definition, its version and the rule, and stamps `fields["definition_version"]`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .cache import rules_for


def definition_version(experiment_id: int | None, *, kind: str, name: str, value, error=None) -> int | None:
    """The version of the experiment's definition of `name` that `value` fits (None: no
    definition); raises ValidationError when it does not fit or a required definition is missing."""
    return rules_for(experiment_id).enforce(name=name, kind=kind, value=value, error=error)


def check_fields(experiment_id: int, kind: str, fields: dict) -> None:
    """The validator's experiment rule: check a create's (or an update's resulting) name, value
    and error; sets fields["definition_version"]."""
    fields["definition_version"] = definition_version(
        experiment_id, kind=kind, name=fields["name"], value=fields.get("value"), error=fields.get("error")
    )


def applies_to_any(experiment_ids: Iterable[int]) -> bool:
    """Whether a write into any of these experiments must be checked (they have a definition
    or require one). Cheap: the per-worker cache answers without a query when fresh."""
    for experiment_id in experiment_ids:
        rules = rules_for(experiment_id)
        if rules.rules or rules.require:
            return True
    return False


def held_definition_version(actor_experiment_ids: Iterable[int], *, kind: str, name: str, value, error=None):
    """Feedback held for a trace that has not arrived: checked now when the sender's key is
    scoped to a single experiment (the trace can only land there); with several, the check
    waits for the trace. Returns the version (or None); raises ValidationError."""
    experiment_ids = list(actor_experiment_ids)
    if len(experiment_ids) != 1:
        return None
    return definition_version(experiment_ids[0], kind=kind, name=name, value=value, error=error)


def one_statement_version(key_experiment_ids, *, kind: str, name: str, value, error=None) -> tuple[bool, int | None]:
    """For the one-statement create (the experiment is learnt only as the row is inserted):
    (usable, definition_version). A key scoped to one experiment is checked against it now
    (ValidationError when refused); with several, the one-statement path is usable only when
    none of them defines `name` or requires definitions."""
    experiment_ids = list(key_experiment_ids)
    if len(experiment_ids) == 1:
        return True, definition_version(experiment_ids[0], kind=kind, name=name, value=value, error=error)
    for experiment_id in experiment_ids:
        rules = rules_for(experiment_id)
        if rules.require or name in rules.rules:
            return False, None
    return True, None
