"""The trace page's delete: a confirmation page, then the delete (experiment owners only)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from traces import selectors as trace_selectors
from traces.access import OWNER, Actor

from .models import Assessment
from .trace_deletion import delete_traces


@login_required
@require_http_methods(["GET", "POST"])
def trace_delete(request: HttpRequest, trace_id: str) -> HttpResponse:
    """GET (or a POST without `confirmed=yes`): what will be deleted, and a confirm button. POST
    with `confirmed=yes`: delete and go back to the experiment's traces. 404 for traces the user
    cannot see, 403 for those of experiments the user does not own."""
    actor = Actor.for_user(request.user)
    trace = trace_selectors.trace_for(actor, trace_id[:50])
    if not actor.can(trace.experiment_id, OWNER):
        raise PermissionDenied("Only the experiment's owners can delete its traces.")
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        delete_traces(experiment=trace.experiment, actor=actor, channel="ui", trace_ids=[trace.trace_id])
        return redirect(reverse("traces:trace_list", args=[trace.experiment_id]))
    context = {
        "trace": trace,
        "experiment": trace.experiment,
        "assessment_count": Assessment.objects.filter(trace=trace).count(),
    }
    return render(request, "traces/trace_confirm_delete.html", context)
