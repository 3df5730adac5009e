"""The experiment's settings, changed in one place: which definitions are required, which name
the reviewer's one-key verdict writes, and how long traces are kept.

Owners, staff and the experiment's API keys may change them; reviewers and viewers may not.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from traces.access import OWNER, Actor
from traces.models import Experiment

from .definitions.services import set_require_definitions

__all__ = ["SETTINGS", "MAX_RETENTION_DAYS", "update_experiment_settings"]

SETTINGS = ("require_definitions", "verdict_name", "retention_days", "retention_keep_human")
MAX_RETENTION_DAYS = 36500


def _bool(field: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValidationError({field: "must be true or false"})
    return value


def _verdict_name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"verdict_name": "must be a non-empty name"})
    if len(value.strip()) > 250:
        raise ValidationError({"verdict_name": f"is {len(value.strip())} characters long; the limit is 250."})
    return value.strip()


def _retention_days(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RETENTION_DAYS:
        raise ValidationError(
            {
                "retention_days": f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, or null to keep forever"
            }
        )
    return value


CLEANERS = {
    "verdict_name": _verdict_name,
    "retention_days": _retention_days,
    "retention_keep_human": lambda value: _bool("retention_keep_human", value),
}


def update_experiment_settings(*, experiment: Experiment, actor: Actor, **changes) -> Experiment:
    """Change any of SETTINGS; the others stay. Raises PermissionDenied and ValidationError
    (naming the field); nothing is changed unless every value is valid."""
    actor.require(experiment.pk, OWNER)
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise ValidationError({unknown[0]: f"is not a setting; the settings are {', '.join(SETTINGS)}"})
    if not changes:
        raise ValidationError({"settings": f"send at least one of {', '.join(SETTINGS)}"})
    cleaned = {field: CLEANERS[field](value) for field, value in changes.items() if field in CLEANERS}
    with transaction.atomic():
        if "require_definitions" in changes:
            set_require_definitions(experiment=experiment, actor=actor, require=changes["require_definitions"])
        if cleaned:
            Experiment.objects.filter(pk=experiment.pk).update(**cleaned, updated_at=timezone.now())
            for field, value in cleaned.items():
                setattr(experiment, field, value)
    return experiment
