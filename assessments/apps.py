from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self):
        # Feedback that arrived before its trace (or span) is attached when the trace is stored
        # or gets spans (traces cannot import assessments, so the hook is registered from this side).
        from traces.services import trace_stored_hooks

        from .services.held import attach_on_ingest

        if attach_on_ingest not in trace_stored_hooks:
            trace_stored_hooks.append(attach_on_ingest)
        # The filter language reads assessment types from the definitions.
        from traces.filter_types import type_sources

        from .definitions.cache import value_types

        if value_types not in type_sources:
            type_sources.append(value_types)
        # Every write path checks values against the experiment's definitions (one validator).
        from .definitions.enforce import check_fields
        from .services import validation

        if check_fields not in validation.EXPERIMENT_RULES:
            validation.EXPERIMENT_RULES.append(check_fields)
