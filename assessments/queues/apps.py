from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "assessments.queues"
    label = "queues"
    verbose_name = "Review queues"

    def ready(self):
        # A queue's rule adds traces as they arrive and as feedback makes them match: one hook on
        # trace ingest, one on assessment writes (traces and assessments cannot import queues).
        from assessments.services import hooks
        from traces.services import trace_stored_hooks

        from .rules import on_assessments_written, on_trace_stored

        if on_trace_stored not in trace_stored_hooks:
            trace_stored_hooks.append(on_trace_stored)
        if on_assessments_written not in hooks.ASSESSMENTS_WRITTEN:
            hooks.ASSESSMENTS_WRITTEN.append(on_assessments_written)
