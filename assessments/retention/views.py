"""The experiment's retention page: its settings (owners change them) and its last purge runs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from traces import selectors as trace_selectors
from traces.access import OWNER, Actor

from ..experiment_settings import update_experiment_settings
from . import selectors
from .forms import RetentionForm


@login_required
@require_http_methods(["GET", "POST"])
def retention(request, experiment_id: int):
    """GET: settings and last runs (queries: experiment, role, runs). POST (owners): change the
    settings through update_experiment_settings, then back to the page; a refused value is shown
    next to its field (status 200, as the other forms)."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    can_change = actor.can(experiment.pk, OWNER)
    initial = {"retention_days": experiment.retention_days, "retention_keep_human": experiment.retention_keep_human}
    form = RetentionForm(initial=initial) if can_change else None
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied("Only the experiment's owners change its retention.")
        form = RetentionForm(request.POST, initial=initial)
        if form.is_valid():
            try:
                update_experiment_settings(experiment=experiment, actor=actor, **form.cleaned_data)
            except ValidationError as exc:
                form.add_service_error(exc)
            else:
                return redirect(reverse("retention:retention", args=[experiment.pk]) + "?saved=1")
    return render(
        request,
        "retention/retention.html",
        {
            "experiment": experiment,
            "role": actor.role(experiment.pk),
            "form": form,
            "saved": request.GET.get("saved") == "1",
            "runs": selectors.purge_runs_for(experiment),
        },
    )
