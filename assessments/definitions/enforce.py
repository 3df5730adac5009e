"""Where the assessment write path asks the definitions: the rule the one validator runs
(assessments.services.validation.EXPERIMENT_RULES, registered by assessments.apps).

It runs on every create (single, override, batch, held when held and when attached, the
one-statement create of a single-experiment key) and on every update that changes a name,
value or error; it raises ValidationError naming the definition, its version and the rule, and
stamps `fields["definition_version"]`.
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


def applies(experiment_ids: Iterable[int], kind: str, fields: dict) -> bool:
    """Whether the check can matter for `fields` in any of these experiments (one defines the
    name or requires definitions). Cheap: the per-worker cache answers without a query when fresh."""
    for experiment_id in experiment_ids:
        rules = rules_for(experiment_id)
        if rules.require or fields["name"] in rules.rules:
            return True
    return False


check_fields.applies = applies
