"""Reads of definitions, shaped for the definitions page, the API and the panel's forms."""

from __future__ import annotations

from django.db.models import F
from django.http import Http404

from traces.models import Experiment

from .models import Definition, DefinitionVersion


def current_versions(experiment_id: int, *, archived: bool = True) -> list[DefinitionVersion]:
    """The current version of each definition of the experiment (definition loaded), by name;
    archived ones too unless `archived=False`. One query."""
    queryset = DefinitionVersion.objects.filter(
        definition__experiment_id=experiment_id, version=F("definition__current_version")
    ).select_related("definition")
    if not archived:
        queryset = queryset.filter(definition__archived_at__isnull=True)
    return list(queryset.order_by("definition__name"))


def definition_for(experiment: Experiment, name: str) -> Definition:
    """The experiment's definition of `name` (archived too); Http404 otherwise."""
    definition = Definition.objects.filter(experiment_id=experiment.pk, name=name).first()
    if definition is None:
        raise Http404(f"No definition named {name!r} in experiment {experiment.pk}.")
    return definition


def current_version(definition: Definition) -> DefinitionVersion:
    version = definition.versions.get(version=definition.current_version)
    version.definition = definition
    return version


def versions_of(definition: Definition) -> list[DefinitionVersion]:
    """Every version of the definition, oldest first (definition attached, one query)."""
    versions = list(definition.versions.order_by("version"))
    for version in versions:
        version.definition = definition
    return versions
