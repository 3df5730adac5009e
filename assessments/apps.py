from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self):
        # Feedback that arrived before its trace is attached when the trace is first stored
        # (traces cannot import assessments, so the hook is registered from this side).
        from traces.services import trace_created_hooks

        from .services import attach_pending_on_create

        if attach_pending_on_create not in trace_created_hooks:
            trace_created_hooks.append(attach_pending_on_create)
