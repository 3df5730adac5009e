"""The agreement page: judge vs human (two series) and reviewers among themselves.

Everyone who can read the experiment sees it. A plain GET form; without a query the page
compares the first suggested pair (a name rated by an LLM judge and by humans). Every count of
the confusion matrix links to the trace list filtered to exactly its traces
(`trace.trace_id IN (...)` in the one filter language), in pieces of LINK_TRACES traces, so that
each link stays within the filter's length limit and a request line.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import reverse

from feedbackhub.replicas import reads_from_replica
from traces import selectors as trace_selectors
from traces.access import Actor

from . import selectors
from .forms import AgreementForm, ReviewerAgreementForm

# Trace ids per trace-list link: 80 ids are about 3,100 characters of filter, 3,600 URL-encoded.
LINK_TRACES = 80


def trace_filter(trace_ids: list[str]) -> str:
    """The filter that yields exactly these traces."""
    quoted = ", ".join("'" + trace_id.replace("'", "''") + "'" for trace_id in trace_ids)
    return f"trace.trace_id IN ({quoted})"


def trace_links(experiment_id: int, trace_ids: list[str]) -> list[str]:
    """Trace-list URLs that together show exactly `trace_ids` (one per LINK_TRACES)."""
    base = reverse("traces:trace_list", args=[experiment_id])
    return [
        f"{base}?{urlencode({'filter': trace_filter(trace_ids[start : start + LINK_TRACES])})}"
        for start in range(0, len(trace_ids), LINK_TRACES)
    ]


def _label(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matrix(experiment_id: int, result: dict) -> dict:
    """Rows (A's labels) of cells (B's labels) with count and links, for the template."""
    cells = {(_label(cell["a"]), _label(cell["b"])): cell for cell in result["confusion"]}
    labels = [_label(label) for label in result["labels"]]
    rows = []
    for a in labels:
        row = []
        for b in labels:
            cell = cells.get((a, b))
            links = trace_links(experiment_id, cell["trace_ids"]) if cell else []
            row.append(
                {
                    "a": a,
                    "b": b,
                    "count": cell["count"] if cell else 0,
                    "traces": len(cell["trace_ids"]) if cell else 0,
                    "links": links,
                    "agree": a == b,
                }
            )
        rows.append({"label": a, "cells": row, "total": sum(cell["count"] for cell in row)})
    totals = [sum(row["cells"][index]["count"] for row in rows) for index in range(len(labels))]
    return {"labels": labels, "rows": rows, "totals": totals}


STATISTICS = (
    ("cohen_kappa", "Cohen's κ", "chance-corrected agreement on labels"),
    ("weighted_kappa", "Weighted κ (quadratic)", "chance-corrected, near misses on the scale count partly"),
    ("pearson", "Pearson's r", "linear correlation"),
    ("spearman", "Spearman's ρ", "rank correlation"),
    ("mae", "Mean absolute error", "average |A − B|"),
)


def _number(value, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _card(key: str, label: str, estimate: dict | None, meaning: str) -> dict:
    """A statistic formatted for its card: value, interval, band and what it means."""
    estimate = estimate or {"value": None, "ci95": None}
    return {
        "key": key,
        "label": label,
        "value": _number(estimate["value"]),
        "ci": [_number(end) for end in estimate["ci95"] or ()],
        "band": estimate.get("band"),
        "help": meaning,
    }


def _cards(result: dict) -> list[dict]:
    """The headline statistics of two series, formatted."""
    cards = [
        {
            "key": "percent_agreement",
            "label": "Percent agreement",
            "value": _number(result["percent_agreement"], percent=True),
            "ci": [_number(end, percent=True) for end in result["percent_agreement_ci95"] or ()],
            "help": "pairs with the same value",
        }
    ]
    return cards + [_card(key, label, result[key], meaning) for key, label, meaning in STATISTICS if key in result]


def reviewer_cards(result: dict) -> list[dict]:
    """Krippendorff's α and Fleiss' κ, formatted."""
    return [
        _card("krippendorff_alpha", "Krippendorff's α", result["krippendorff_alpha"], f"{result['level']} level"),
        _card("fleiss_kappa", "Fleiss' κ", result["fleiss_kappa"], result["fleiss_kappa_note"] or ""),
    ]


def _suggested(suggestion) -> dict:
    a, b = suggestion
    return {
        "a": a.name,
        "a_source_type": a.source_type,
        "a_source_id": a.source_id,
        "b": b.name,
        "b_source_type": b.source_type,
        "b_source_id": b.source_id,
    }


@login_required
@reads_from_replica
def agreement_page(request, experiment_id: int):
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    choices = selectors.series_choices(experiment)
    suggestions = [
        {"a": a, "b": b, "url": "?" + urlencode({k: v for k, v in _suggested((a, b)).items() if v})}
        for a, b in choices["suggestions"]
    ]
    if "a" in request.GET or "b" in request.GET:
        form = AgreementForm(request.GET)
    elif choices["suggestions"]:
        form = AgreementForm(_suggested(choices["suggestions"][0]))
    else:
        form = AgreementForm()
    result = matrix = cards = coverage = None
    if form.is_bound and form.is_valid():
        try:
            result = selectors.agreement(experiment, form.series("a"), form.series("b"))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            if "confusion" in result:
                matrix = _matrix(experiment.pk, result)
            cards = _cards(result)
            for row in result["disagreements"]:
                row["a_text"], row["b_text"] = _label(row["a"]["value"]), _label(row["b"]["value"])
            coverage = {side: _number(result["coverage"][side], percent=True) for side in ("a", "b")}

    reviewer_query = {key[2:]: value for key, value in request.GET.items() if key.startswith("r-")}
    if not reviewer_query and choices["reviewed_names"]:
        reviewer_query = {"name": choices["reviewed_names"][0]}
    reviewer_form = ReviewerAgreementForm(reviewer_query or None)
    reviewers = None
    if reviewer_form.is_bound and reviewer_form.is_valid():
        data = reviewer_form.cleaned_data
        try:
            reviewers = selectors.reviewer_agreement(experiment, data["name"], data["queue_id"])
            reviewers["cards"] = reviewer_cards(reviewers)
            for pair in reviewers["pairs"]:
                statistic = next(key for key in ("cohen_kappa", "weighted_kappa", "pearson") if key in pair)
                estimate = pair[statistic] or {"value": None, "ci95": None}
                pair["display"] = {
                    "percent": _number(pair["percent_agreement"], percent=True),
                    "value": _number(estimate["value"]),
                    "ci": [_number(end) for end in estimate["ci95"] or ()],
                    "band": estimate.get("band"),
                    "statistic": dict((k, label) for k, label, _ in STATISTICS)[statistic],
                }
        except ValidationError as exc:
            reviewer_form.add_error(None, exc.messages)

    return render(
        request,
        "agreement/agreement.html",
        {
            "experiment": experiment,
            "role": actor.role(experiment.pk),
            "form": form,
            "result": result,
            "matrix": matrix,
            "cards": cards,
            "title": f"A: {form.series('a').label}  vs  B: {form.series('b').label}" if result else "",
            "coverage": coverage,
            "choices": choices,
            "suggestions": suggestions,
            "reviewer_form": reviewer_form,
            "reviewers": reviewers,
            "link_traces": LINK_TRACES,
        },
    )
