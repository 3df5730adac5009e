"""Every write to a definition: create, change (a new version), archive, and the experiment's
`require_definitions` flag. Each bumps the experiment's `definitions_stamp` in the same
transaction, so every worker's cache notices (assessments.definitions.cache).

Owners, staff and the experiment's API keys may call them; reviewers and viewers may not.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from traces.access import OWNER, Actor
from traces.models import Experiment
from traces.services import Conflict

from . import cache
from .models import Definition, DefinitionVersion
from .rules import ALL_CONSTRAINTS, CONSTRAINTS, TYPES, clean_constraints

__all__ = ["create_definition", "update_definition", "archive_definition", "set_require_definitions"]

KINDS = tuple(Definition.Kind.values)


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "A definition needs a non-empty name."})
    if len(name.strip()) > 250:
        raise ValidationError({"name": f"is {len(name.strip())} characters long; the limit is 250."})
    return name.strip()


def _clean_description(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ValidationError({"description": "must be a string"})
    if len(description) > 10_000:
        raise ValidationError({"description": "is longer than 10,000 characters"})
    return description


def _stamp(experiment_id: int) -> None:
    """Mark the experiment's definitions as changed (a random stamp: ids of rolled-back
    experiments come back, counters would too)."""
    stamp = secrets.randbits(62)
    Experiment.objects.filter(pk=experiment_id).update(definitions_stamp=stamp)
    cache.changed(experiment_id, stamp)


def _new_version(definition: Definition, *, number: int, type_: str, constraints: dict, description, actor: Actor):
    return DefinitionVersion.objects.create(
        definition=definition,
        version=number,
        type=type_,
        constraints=constraints,
        description=description,
        created_at=definition.updated_at,
        created_by=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        created_by_key=actor.api_key,
        actor_label=actor.label[:250],
    )


def create_definition(
    *,
    experiment: Experiment,
    actor: Actor,
    name: str,
    type: str,  # noqa: A002 - the API's field name
    kind: str = Definition.Kind.FEEDBACK,
    description: str = "",
    **constraints,
) -> DefinitionVersion:
    """Define `name` in the experiment (version 1; an archived definition of that name comes
    back with its next version). Returns the new version (its definition loaded).

    Raises PermissionDenied (not an owner, staff or key of the experiment), ValidationError
    (bad name, kind, type or constraints, e.g. min > max) and Conflict (the name is defined).
    """
    actor.require(experiment.pk, OWNER)
    name = _clean_name(name)
    if kind not in KINDS:
        raise ValidationError({"kind": f"must be one of {', '.join(KINDS)}"})
    unknown = set(constraints) - set(ALL_CONSTRAINTS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "is not a definition field"})
    cleaned = clean_constraints(type, constraints)
    description = _clean_description(description)
    now = timezone.now()
    try:
        with transaction.atomic():
            definition = Definition.objects.select_for_update().filter(experiment_id=experiment.pk, name=name).first()
            if definition is not None and not definition.is_archived:
                raise Conflict(
                    f"{name!r} is already defined in this experiment (version {definition.current_version})."
                )
            if definition is None:
                definition = Definition.objects.create(
                    experiment_id=experiment.pk, name=name, kind=kind, created_at=now, updated_at=now
                )
            else:
                definition.kind = kind
                definition.current_version += 1
                definition.archived_at = None
                definition.updated_at = now
                definition.save(update_fields=["kind", "current_version", "archived_at", "updated_at"])
            version = _new_version(
                definition,
                number=definition.current_version,
                type_=type,
                constraints=cleaned,
                description=description,
                actor=actor,
            )
            _stamp(experiment.pk)
    except IntegrityError:
        raise Conflict(f"{name!r} is already defined in this experiment.") from None
    return version


def update_definition(*, definition: Definition, actor: Actor, **changes) -> DefinitionVersion:
    """Write the next version of a definition: the current one with `changes` (type,
    description, constraints; a constraint set to None is removed; a new type starts from
    the constraints given). Nothing changes → no new version. Assessments keep the version
    they were written under. Returns the current version.

    Raises PermissionDenied, ValidationError (unknown field, kind or name changes, bad
    constraints) and Conflict (the definition is archived).
    """
    actor.require(definition.experiment_id, OWNER)
    for fixed in ("name", "kind"):
        if fixed in changes:
            current_value = getattr(definition, fixed)
            if changes.pop(fixed) != current_value:
                raise ValidationError(
                    {fixed: f"cannot change (archive the definition and define {fixed} anew); it is {current_value!r}"}
                )
    unknown = set(changes) - {"type", "description", *ALL_CONSTRAINTS}
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "is not a definition field"})
    with transaction.atomic():
        definition = Definition.objects.select_for_update().get(pk=definition.pk)
        if definition.is_archived:
            raise Conflict(f"{definition.name!r} is archived; define it again to use it.")
        current = definition.versions.get(version=definition.current_version)
        type_ = changes.get("type", current.type)
        if type_ not in TYPES:
            raise ValidationError({"type": f"must be one of {', '.join(TYPES)}"})
        base = current.constraints if type_ == current.type else {}
        merged = {**base, **{key: value for key, value in changes.items() if key in ALL_CONSTRAINTS}}
        merged = {key: value for key, value in merged.items() if value is not None and key in CONSTRAINTS[type_]}
        given_foreign = [key for key in changes if key in ALL_CONSTRAINTS and key not in CONSTRAINTS[type_]]
        if given_foreign and changes[given_foreign[0]] is not None:
            raise ValidationError({given_foreign[0]: f"does not apply to a {type_} definition"})
        cleaned = clean_constraints(type_, merged)
        description = _clean_description(changes.get("description", current.description))
        if type_ == current.type and cleaned == current.constraints and description == current.description:
            current.definition = definition
            return current
        definition.current_version += 1
        definition.updated_at = timezone.now()
        definition.save(update_fields=["current_version", "updated_at"])
        version = _new_version(
            definition,
            number=definition.current_version,
            type_=type_,
            constraints=cleaned,
            description=description,
            actor=actor,
        )
        _stamp(definition.experiment_id)
    return version


def archive_definition(*, definition: Definition, actor: Actor) -> Definition:
    """Stop enforcing a definition; its versions and the stamps on assessments stay.
    Archiving an archived definition changes nothing. Raises PermissionDenied."""
    actor.require(definition.experiment_id, OWNER)
    with transaction.atomic():
        definition = Definition.objects.select_for_update().get(pk=definition.pk)
        if definition.is_archived:
            return definition
        definition.archived_at = definition.updated_at = timezone.now()
        definition.save(update_fields=["archived_at", "updated_at"])
        _stamp(definition.experiment_id)
    return definition


def set_require_definitions(*, experiment: Experiment, actor: Actor, require: bool) -> Experiment:
    """Refuse (True) or allow (False) assessment names without a definition in the experiment.
    Raises PermissionDenied and ValidationError."""
    actor.require(experiment.pk, OWNER)
    if not isinstance(require, bool):
        raise ValidationError({"require_definitions": "must be true or false"})
    with transaction.atomic():
        Experiment.objects.filter(pk=experiment.pk).update(require_definitions=require, updated_at=timezone.now())
        _stamp(experiment.pk)
    experiment.require_definitions = require
    return experiment
