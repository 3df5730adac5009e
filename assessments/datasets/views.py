"""The dataset pages: an experiment's datasets, a dataset (draft records, add, publish,
versions, diff), a record's edit form, a published version, and the trace list selection.

Members read; reviewers and above write (the services decide). Plain forms: POST, then
redirect (or the page again with the bound form and its errors, status 200).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from traces import selectors as trace_selectors
from traces.access import OWNER, REVIEWER, Actor
from traces.filters import FilterError
from traces.services import Conflict

from . import selectors, services
from .forms import AddRecordsForm, DatasetForm, PublishForm, RecordForm


def _go(request, url: str):
    """After a delete: htmx (the confirmed button) follows HX-Redirect, a plain form a redirect."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _errors(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: fields the form has, the rest on top."""
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, " ".join(messages))
    else:
        form.add_error(None, " ".join(exc.messages))


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request, experiment_id: int):
    """GET: the experiment's datasets. POST: create one."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.create_dataset(experiment=experiment, actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            _errors(form, exc)
        except Conflict as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("datasets:dataset_detail", dataset.pk)
    return render(
        request,
        "datasets/dataset_list.html",
        {
            "experiment": experiment,
            "datasets": selectors.datasets_of(experiment.pk),
            "form": form,
            "can_write": actor.can(experiment.pk, REVIEWER),
            "role": actor.role(experiment.pk),
        },
    )


def _detail(request, dataset, actor, *, add_form=None, publish_form=None, message=None):
    versions = list(selectors.versions_of(dataset))
    return render(
        request,
        "datasets/dataset_detail.html",
        {
            "dataset": dataset,
            "experiment": dataset.experiment,
            "records": selectors.draft_records(dataset),
            "versions": versions,
            "add_form": add_form or AddRecordsForm(),
            "publish_form": publish_form or PublishForm(),
            "can_write": actor.can(dataset.experiment_id, REVIEWER),
            "can_delete": actor.can(dataset.experiment_id, OWNER),
            "message": message,
            "added": request.GET.get("added"),
            "published": request.GET.get("published"),
        },
    )


@login_required
@require_GET
def dataset_detail(request, dataset_id: str):
    actor = Actor.for_user(request.user)
    return _detail(request, selectors.dataset_for(actor, dataset_id), actor)


@login_required
@require_POST
def records_add(request, dataset_id: str):
    """Add records from trace ids or a filter."""
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    form = AddRecordsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["trace_ids"]:
                result = services.add_records_from_traces(
                    dataset=dataset, actor=actor, trace_ids=data["trace_ids"], include_outputs=data["include_outputs"]
                )
            else:
                result = services.add_records_from_filter(
                    dataset=dataset,
                    actor=actor,
                    filter_text=data["filter"],
                    limit=data["limit"] or services.DEFAULT_FILTER_LIMIT,
                    include_outputs=data["include_outputs"],
                )
        except ValidationError as exc:
            _errors(form, exc)
        except FilterError as exc:
            form.add_error("filter", f"This filter does not parse: {exc}")
        else:
            url = reverse("datasets:dataset_detail", args=[dataset.pk])
            return redirect(f"{url}?added={result.added}&updated={result.updated}#records")
    return _detail(request, dataset, actor, add_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def add_selected(request, experiment_id: int):
    """The trace list's selection: pick a dataset (or name a new one) and add the traces."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    trace_ids = request.POST.getlist("trace") if request.method == "POST" else request.GET.getlist("trace")
    datasets = list(selectors.datasets_of(experiment.pk))
    error = None
    if request.method == "POST":
        try:
            chosen = request.POST.get("dataset", "")
            if chosen == "new":
                dataset = services.create_dataset(experiment=experiment, actor=actor, name=request.POST.get("name", ""))
            else:
                dataset = selectors.dataset_for(actor, chosen)
                if dataset.experiment_id != experiment.pk:
                    raise ValidationError("Pick a dataset of this experiment.")
            result = services.add_records_from_traces(dataset=dataset, actor=actor, trace_ids=trace_ids)
        except (ValidationError, Conflict) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        else:
            url = reverse("datasets:dataset_detail", args=[dataset.pk])
            return redirect(f"{url}?added={result.added}&updated={result.updated}#records")
    return render(
        request,
        "datasets/add_selected.html",
        {
            "experiment": experiment,
            "trace_ids": trace_ids,
            "datasets": datasets,
            "error": error,
            "can_write": actor.can(experiment.pk, REVIEWER),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def record_edit(request, dataset_id: str, record_id: str):
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    record = selectors.record_for(dataset, record_id)
    if request.method == "POST":
        form = RecordForm(request.POST)
        if form.is_valid():
            try:
                services.update_record(record=record, actor=actor, **form.cleaned_data)
            except ValidationError as exc:
                _errors(form, exc)
            else:
                return redirect(reverse("datasets:dataset_detail", args=[dataset.pk]) + f"#{record.pk}")
    else:
        form = RecordForm(initial=RecordForm.initial_of(record))
    return render(request, "datasets/record_edit.html", {"dataset": dataset, "record": record, "form": form})


@login_required
@require_POST
def record_delete(request, dataset_id: str, record_id: str):
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    record = selectors.record_for(dataset, record_id)
    services.delete_records(dataset=dataset, actor=actor, record_ids=[record.pk])
    return _go(request, reverse("datasets:dataset_detail", args=[dataset.pk]) + "#records")


@login_required
@require_POST
def publish(request, dataset_id: str):
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    form = PublishForm(request.POST)
    if form.is_valid():
        try:
            version = services.publish_version(dataset=dataset, actor=actor, note=form.cleaned_data["note"])
        except ValidationError as exc:
            _errors(form, exc)
        else:
            return redirect(
                reverse("datasets:dataset_detail", args=[dataset.pk]) + f"?published={version.version}#versions"
            )
    return _detail(request, dataset, actor, publish_form=form)


@login_required
@require_POST
def dataset_delete(request, dataset_id: str):
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    services.delete_dataset(dataset=dataset, actor=actor)
    return _go(request, reverse("datasets:dataset_list", args=[dataset.experiment_id]))


@login_required
@require_GET
def version_detail(request, dataset_id: str, number: int):
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    version = selectors.version_for(dataset, number)
    return render(
        request,
        "datasets/version_detail.html",
        {"dataset": dataset, "version": version, "records": selectors.version_records(version)},
    )


@login_required
@require_GET
def diff(request, dataset_id: str):
    """Two versions (or a version and the draft) side by side: added, removed, changed."""
    actor = Actor.for_user(request.user)
    dataset = selectors.dataset_for(actor, dataset_id)
    versions = list(selectors.versions_of(dataset))
    base = request.GET.get("from") or (str(versions[1].version) if len(versions) > 1 else None)
    other = request.GET.get("to") or (str(versions[0].version) if versions else selectors.DRAFT)
    result = selectors.diff(dataset, base, other) if base else None
    return render(
        request,
        "datasets/diff.html",
        {"dataset": dataset, "versions": versions, "diff": result, "base": base, "other": other},
    )
