"""The assessments panel of the trace page as data: its state from the query string and
everything its template shows, with per-item permission flags from the services' predicates.
Used by the panel views (assessments.views) and the trace page (traces.views)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html_join

from traces.access import REVIEWER, Actor
from traces.models import Trace

from . import selectors
from .definitions.cache import rules_for
from .definitions.panel import panel_definitions
from .forms import AssessmentCreateForm, AssessmentUpdateForm, OverrideForm, value_type_of
from .models import Assessment, Revision
from .services import can_change, can_override

PANEL_TEMPLATE = "assessments/includes/assessment_panel.html"
TARGET_MODES = ("edit", "override", "history", "delete")
KINDS = (Assessment.Kind.FEEDBACK, Assessment.Kind.EXPECTATION)


# --- the panel's state and context ----------------------------------------------------------------


def panel_state_from_params(params) -> dict:
    """?add=feedback|expectation[&name=…] or ?edit= / ?override= / ?history= / ?delete=<assessment id>."""
    if params.get("add") in KINDS:
        return {
            "mode": "add",
            "add_kind": params["add"],
            "add_name": params.get("name", "")[:250],
        }
    for mode in TARGET_MODES:
        if params.get(mode):
            return {"mode": mode, "target_id": params[mode][:50]}
    return {}


def panel_context(
    request,
    actor: Actor,
    trace: Trace,
    *,
    ctx,  # traces.views.ListContext: the list the trace page was opened from
    assessments: list[Assessment] | None = None,
    span_names: dict[str, str] | None = None,
    selected_span=None,
    selected_span_id: str | None = None,
    mode: str | None = None,
    add_kind: str = Assessment.Kind.FEEDBACK,
    add_name: str = "",
    target_id: str | None = None,
    form=None,
    message: str | None = None,
    message_level: str = "info",
    conflict: Assessment | None = None,
    focus_id: str | None = None,
) -> dict:
    """Everything the panel template shows, with per-item permission flags.

    Queries: the trace's assessments unless given (prefetched by the page), span names for
    targeted spans unless given, the main boolean name only when the trace has no boolean
    feedback, names for suggestions when the add form is open, revisions when a history is open.
    """
    exp_id = trace.experiment_id
    if assessments is None:
        assessments = selectors.assessments_for_trace(trace, actor)
    if selected_span is not None:
        selected_span_id = selected_span.span_id
    if span_names is None:
        span_names = selectors.span_names(trace.trace_id, [a.span_id for a in assessments] + [selected_span_id])
    by_id = {a.assessment_id: a for a in assessments}
    # Reversed once, filled in per item (a panel may list hundreds of assessments).
    history_url = reverse("assessments:assessment_history", args=["__id__"])
    delete_url = reverse("assessments:assessment_delete", args=["__id__"])
    can_add = actor.can(exp_id, REVIEWER)
    for a in assessments:
        a.is_mine = actor.is_author_of(a)
        a.can_edit = can_change(actor, a)
        a.can_override = can_override(actor, a)
        a.replacement = by_id.get(getattr(a, "overridden_by_id", None))
        a.replaced = by_id.get(a.overrides_id)
        a.span_name = span_names.get(a.span_id) if a.span_id else None
        a.history_url = history_url.replace("__id__", a.assessment_id)
        a.delete_url = delete_url.replace("__id__", a.assessment_id)

    target = by_id.get(target_id) if target_id else None
    if mode in TARGET_MODES and target is None:
        mode, message, message_level = (
            None,
            "That assessment no longer exists; the panel shows the current state.",
            "error",
        )
    elif mode == "add" and not can_add:
        mode, message, message_level = (
            None,
            "You can read this experiment's feedback but not add to it.",
            "error",
        )
    elif mode in ("edit", "delete") and not target.can_edit:
        mode, message, message_level = (
            None,
            "You may only change your own feedback.",
            "error",
        )
    elif mode == "override" and not target.can_override:
        mode, message, message_level = (
            None,
            "This assessment cannot be overridden by you.",
            "error",
        )

    if mode == "add" and add_kind not in KINDS:
        add_kind = Assessment.Kind.FEEDBACK
    main_name = selectors.verdict_name_for(trace)  # the reviewer's verdict (experiment setting)
    my_thumb = None
    for a in assessments:
        if (
            a.is_mine
            and a.valid
            and a.kind == Assessment.Kind.FEEDBACK
            and a.name == main_name
            and isinstance(a.value, bool)
        ):
            my_thumb = a.value
    if form is None:
        if mode == "add":
            is_feedback = add_kind == Assessment.Kind.FEEDBACK
            initial_name = add_name or (main_name if is_feedback else "expected_response")
            initial_type = "category" if not is_feedback else _type_used(assessments, initial_name, default="boolean")
            form = AssessmentCreateForm(initial={"name": initial_name, "value_type": initial_type})
        elif mode == "edit":
            form = AssessmentUpdateForm.for_assessment(target)
        elif mode == "override":
            form = OverrideForm.for_assessment(target)

    feedback_groups = _groups(assessments, Assessment.Kind.FEEDBACK, main_name)
    verdict_rule = rules_for(exp_id).rules.get(main_name)
    if verdict_rule is not None and verdict_rule.kind != Assessment.Kind.FEEDBACK:
        verdict_rule = None
    expectation_groups = _groups(assessments, Assessment.Kind.EXPECTATION)
    conflict_by = None
    if conflict is not None:
        latest = Revision.objects.filter(assessment_id=conflict.assessment_id).order_by("-created_at", "-id").first()
        conflict_by = latest.actor_label if latest is not None else None

    trace_url = trace.get_absolute_url()
    context_params = ctx.params(span=selected_span_id or "")
    panel_url = reverse("assessments:assessment_panel", args=[trace.trace_id])
    return {
        "trace": trace,
        "assessments": assessments,
        "feedback_groups": feedback_groups,
        "expectation_groups": expectation_groups,
        "conflict_by": conflict_by,
        "focus_id": focus_id,
        "can_add": can_add,
        "main_name": main_name,
        # A definition of the verdict's name governs it: thumbs for a boolean, else its form.
        "verdict_is_thumbs": verdict_rule is None or verdict_rule.type == "boolean",
        "my_thumb": my_thumb,
        "mode": mode,
        "add_kind": add_kind,
        "target": target,
        "form": form,
        "conflict": conflict,
        "message": message,
        "message_level": message_level,
        "names": selectors.assessment_names(exp_id, add_kind) if mode == "add" else [],
        "revisions": list(selectors.history_for(target.assessment_id)) if mode == "history" else None,
        "selected_span_id": selected_span_id if selected_span_id in span_names else None,
        "selected_span_name": span_names.get(selected_span_id) if selected_span_id else None,
        "trace_url": trace_url,
        "panel_url": panel_url,
        "panel_refresh_url": panel_url + (f"?{urlencode(context_params)}" if context_params else ""),
        # Hidden inputs carrying the list context in every panel form, rendered once per panel.
        "ctx_inputs": format_html_join(
            "",
            '<input type="hidden" name="{}" value="{}">',
            sorted(context_params.items()),
        ),
        "trace_page_url": trace_url + (f"?{ctx.query(span=selected_span_id or '')}" if context_params else ""),
        **panel_definitions(
            experiment_id=exp_id,
            mode=mode,
            add_kind=add_kind if mode == "add" else (target.kind if target is not None else add_kind),
            name=(form["name"].value() if mode == "add" else (target.name if target is not None else None)),
        ),
    }


def _type_used(assessments: list[Assessment], name: str, default: str) -> str:
    """The value type earlier raters used under `name`, so another rating starts with the same input."""
    for a in reversed(assessments):
        if a.name == name and a.value is not None:
            return value_type_of(a.value)
    return default


# Groups read top-down from the reviewer's own verdicts to machine details.
TYPE_RANK = {
    "boolean": 0,
    "number": 1,
    "string": 2,
    "error": 3,
    "list": 4,
    "object": 4,
    "none": 5,
}


def _groups(assessments: list[Assessment], kind: str, main_name: str | None = None) -> list[dict]:
    """Assessments of one kind grouped by name, with a summary of the valid ones. The main boolean
    name comes first, then thumbs, numbers, labels, errors and structured values; ties by first use."""
    groups: dict[str, dict] = {}
    for a in assessments:
        if a.kind != kind:
            continue
        group = groups.setdefault(a.name, {"name": a.name, "items": [], "order": len(groups)})
        group["items"].append(a)
    for group in groups.values():
        chips = selectors.summarize_feedback(
            (a.name, a.value, a.error, a.source_type) for a in group["items"] if a.valid
        )
        group["chip"] = chips[0] if len(chips) == 1 else None
        group["rank"] = min(TYPE_RANK.get(a.value_type, 5) for a in group["items"])
    return sorted(groups.values(), key=lambda g: (g["name"] != main_name, g["rank"], g["order"]))
