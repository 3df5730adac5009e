"""The definitions page of an experiment: list, create, edit (a new version), archive,
versions, the require-definitions switch and proposals from the data.

Members read it; owners and staff change it (the services decide). Plain forms: POST, then
redirect (or the page again with the bound form and its errors, status 200).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from traces import selectors as trace_selectors
from traces.access import OWNER, Actor
from traces.services import Conflict

from . import selectors, services
from .forms import DefinitionForm
from .propose import proposals_for


def _page(request, experiment, actor, *, form=None, status=200, message=None, proposals=None):
    can_change = actor.can(experiment.pk, OWNER)
    return render(
        request,
        "assessments/definitions/definition_list.html",
        {
            "experiment": experiment,
            "definitions": selectors.current_versions(experiment.pk),
            "can_change": can_change,
            "form": form if form is not None else (DefinitionForm() if can_change else None),
            "message": message,
            "proposals": proposals,
            "role": actor.role(experiment.pk),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def definition_list(request, experiment_id: int):
    """GET: the page. POST: create a definition from the form."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    if request.method == "GET":
        return _page(request, experiment, actor)
    form = DefinitionForm(request.POST)
    if form.is_valid():
        try:
            version = services.create_definition(experiment=experiment, actor=actor, **form.cleaned_data_for_create())
        except ValidationError as exc:
            form.add_service_error(exc)
        except Conflict as exc:
            form.add_error("name", str(exc))
        else:
            return redirect(_url(experiment) + f"?created={version.definition.name}#def-{version.definition.pk}")
    return _page(request, experiment, actor, form=form)


def _url(experiment) -> str:
    return reverse("definitions:definition_list", args=[experiment.pk])


@login_required
@require_http_methods(["GET", "POST"])
def definition_edit(request, experiment_id: int, name: str):
    """GET: the form with the current version. POST: write the next version."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    definition = selectors.definition_for(experiment, name)
    current = selectors.current_version(definition)
    if not actor.can(experiment.pk, OWNER):
        raise PermissionDenied("Only the experiment's owners change its definitions.")
    if request.method == "GET":
        form = DefinitionForm(initial=DefinitionForm.initial_of(current), editing=True)
    else:
        form = DefinitionForm(request.POST, initial=DefinitionForm.initial_of(current), editing=True)
        if form.is_valid():
            try:
                services.update_definition(definition=definition, actor=actor, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_error(exc)
            except Conflict as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(_url(experiment) + f"#def-{definition.pk}")
    return render(
        request,
        "assessments/definitions/definition_edit.html",
        {"experiment": experiment, "definition": definition, "current": current, "form": form},
    )


@login_required
@require_POST
def definition_archive(request, experiment_id: int, name: str):
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    definition = selectors.definition_for(experiment, name)
    services.archive_definition(definition=definition, actor=actor)
    return redirect(_url(experiment) + f"#def-{definition.pk}")


@login_required
def definition_versions(request, experiment_id: int, name: str):
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    definition = selectors.definition_for(experiment, name)
    return render(
        request,
        "assessments/definitions/definition_versions.html",
        {"experiment": experiment, "definition": definition, "versions": selectors.versions_of(definition)[::-1]},
    )


@login_required
@require_POST
def require_definitions(request, experiment_id: int):
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    services.set_require_definitions(experiment=experiment, actor=actor, require=request.POST.get("require") == "on")
    return redirect(_url(experiment))


@login_required
@require_POST
def verdict_setting(request, experiment_id: int):
    """The experiment's verdict name (what the reviewer's one-key thumbs write), through the
    settings service; a refused name is shown on the page (status 200), nothing changed."""
    from ..experiment_settings import update_experiment_settings

    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    try:
        update_experiment_settings(
            experiment=experiment, actor=actor, verdict_name=request.POST.get("verdict_name", "")
        )
    except ValidationError as exc:
        return _page(request, experiment, actor, message="Reviewers' verdict: " + " ".join(exc.messages))
    return redirect(_url(experiment) + "#verdict-title")


@login_required
@require_http_methods(["GET", "POST"])
def definition_propose(request, experiment_id: int):
    """GET: a proposal per name seen in the data. POST `accept=<name>`: define it as proposed;
    POST `edit=<name>`: the page's create form filled with the proposal."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    if not actor.can(experiment.pk, OWNER):
        raise PermissionDenied("Only the experiment's owners define names.")
    proposals = proposals_for(experiment.pk)
    if request.method == "GET":
        return _page(request, experiment, actor, proposals=proposals)
    wanted = request.POST.get("accept") or request.POST.get("edit")
    proposal = next((p for p in proposals if p.name == wanted and not p.defined), None)
    if proposal is None:
        return _page(
            request, experiment, actor, proposals=proposals, message=f"There is no open proposal for {wanted!r}."
        )
    if "edit" in request.POST:
        form = DefinitionForm(initial=DefinitionForm.initial_of(proposal.as_version()))
        return _page(request, experiment, actor, form=form, proposals=proposals)
    try:
        services.create_definition(experiment=experiment, actor=actor, **proposal.service_kwargs())
    except (ValidationError, Conflict) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return _page(request, experiment, actor, proposals=proposals, message=message)
    return redirect(reverse("definitions:definition_propose", args=[experiment.pk]))
