"""The assessments panel of the trace page: add, rate, edit, override, delete, history.

Every action is a plain form (POST + redirect without JavaScript) that htmx upgrades to
swap only `#assessment-panel`. Forms parse; `services` validate, check permissions and
write (channel "ui", source HUMAN with the reviewer's username). Outcomes:

- success: htmx → the fresh panel + `assessments-changed` event; plain → redirect to the trace page;
- invalid input: the panel (htmx) or the page (plain) with the bound form, status 200;
- refused (PermissionDenied): the panel with the reason, status 403 (plain: the 403 page);
- clash (Conflict, StaleVersion): the panel with both versions or the reason, status 409.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from traces import selectors as trace_selectors
from traces.access import OWNER, REVIEWER, Actor
from traces.models import SPAN_ID_RE, Trace
from traces.views import HtmxHttpRequest, ListContext, render_trace_page, wants_fragment

from . import selectors, services
from .forms import AssessmentCreateForm, AssessmentUpdateForm, OverrideForm, ThumbForm
from .models import Assessment, Revision

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
    request: HtmxHttpRequest,
    actor: Actor,
    trace: Trace,
    *,
    ctx: ListContext,
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
        assessments = selectors.assessments_for_trace(trace)
    if selected_span is not None:
        selected_span_id = selected_span.span_id
    if span_names is None:
        span_names = selectors.span_names(trace.trace_id, [a.span_id for a in assessments] + [selected_span_id])
    by_id = {a.assessment_id: a for a in assessments}
    # Reversed once, filled in per item (a panel may list hundreds of assessments).
    history_url = reverse("assessments:assessment_history", args=["__id__"])
    delete_url = reverse("assessments:assessment_delete", args=["__id__"])
    can_add = actor.can(exp_id, REVIEWER)
    is_owner = actor.can(exp_id, OWNER)
    for a in assessments:
        a.is_mine = actor.is_author_of(a)
        a.can_edit = is_owner or (can_add and a.is_mine)
        a.can_override = (
            can_add
            and a.kind == Assessment.Kind.FEEDBACK
            and a.valid
            and (a.source_type != Assessment.SourceType.HUMAN or a.can_edit)
        )
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
    main_name = selectors.main_boolean_name(exp_id, assessments)
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
    expectation_groups = _groups(assessments, Assessment.Kind.EXPECTATION)
    add_group = None
    if mode == "add":
        typed = (form["name"].value() or "").strip()
        names_here = {
            g["name"] for g in (feedback_groups if add_kind == Assessment.Kind.FEEDBACK else expectation_groups)
        }
        add_group = typed if typed in names_here else None
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
        "add_group": add_group,
        "conflict_by": conflict_by,
        "focus_id": focus_id,
        "can_add": can_add,
        "main_name": main_name,
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
    }


def _type_used(assessments: list[Assessment], name: str, default: str) -> str:
    """The value type earlier raters used under `name`, so another rating starts with the same input."""
    from .forms import value_type_of

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
        chips = selectors.summarize_feedback((a.name, a.value, a.error) for a in group["items"] if a.valid)
        group["chip"] = chips[0] if len(chips) == 1 else None
        group["rank"] = min(TYPE_RANK.get(a.value_type, 5) for a in group["items"])
    return sorted(groups.values(), key=lambda g: (g["name"] != main_name, g["rank"], g["order"]))


# --- responses -------------------------------------------------------------------------------------


def _params(request):
    return request.POST if request.method == "POST" else request.GET


def respond(
    request: HtmxHttpRequest,
    actor: Actor,
    trace: Trace,
    *,
    status: int = 200,
    changed: bool = False,
    **panel,
) -> HttpResponse:
    """The panel fragment (htmx) or the whole trace page (plain request) in the given state."""
    if request.htmx:
        params = _params(request)
        context = panel_context(
            request,
            actor,
            trace,
            ctx=ListContext.from_params(params),
            selected_span_id=params.get("span") or None,
            **panel,
        )
        response = render(request, PANEL_TEMPLATE, context, status=status)
        if changed:
            trigger_client_event(response, "assessments-changed")
        return response
    return render_trace_page(request, actor, trace.trace_id, panel=panel, status=status)


def done(
    request: HtmxHttpRequest,
    actor: Actor,
    trace: Trace,
    message: str,
    focus: str | None = None,
) -> HttpResponse:
    """After a successful write: the fresh panel (htmx) or a redirect to the trace page (plain).
    `focus` names the assessment the reviewer's focus (and the page anchor) moves to."""
    if request.htmx:
        return respond(
            request,
            actor,
            trace,
            changed=True,
            message=message,
            message_level="success",
            focus_id=focus,
        )
    params = request.POST
    ctx = ListContext.from_params(params)
    span = params.get("span", "")
    query = ctx.query(span=span if SPAN_ID_RE.match(span) else "")
    anchor = f"a-{focus}" if focus else "assessment-panel"
    return redirect(f"{trace.get_absolute_url()}{'?' + query if query else ''}#{anchor}")


def refused(request: HtmxHttpRequest, actor: Actor, trace: Trace, exc: PermissionDenied) -> HttpResponse:
    if request.htmx:
        return respond(
            request,
            actor,
            trace,
            status=403,
            message=str(exc) or "You may not do that.",
            message_level="error",
        )
    raise exc


def _source(request) -> dict:
    return {
        "source_type": Assessment.SourceType.HUMAN,
        "source_id": request.user.get_username(),
    }


def _assessment_and_trace(actor: Actor, assessment_id: str) -> tuple[Assessment, Trace]:
    assessment = selectors.assessment_for(actor, assessment_id)
    return assessment, trace_selectors.trace_for(actor, assessment.trace_id)


# --- views -----------------------------------------------------------------------------------------


@login_required
@require_GET
def assessment_panel(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """The panel in the state the query string names (used by every panel link and button)."""
    actor = Actor.for_user(request.user)
    trace = trace_selectors.trace_for(actor, trace_id)
    if not wants_fragment(request):
        query = request.GET.urlencode()
        return redirect(f"{trace.get_absolute_url()}{'?' + query if query else ''}#assessment-panel")
    return respond(request, actor, trace, **panel_state_from_params(request.GET))


def _create(request: HtmxHttpRequest, trace_id: str, kind: str) -> HttpResponse:
    actor = Actor.for_user(request.user)
    trace = trace_selectors.trace_for(actor, trace_id)
    state = {
        "mode": "add",
        "add_kind": kind,
        "add_name": _params(request).get("name", "")[:250],
    }
    if request.method == "GET":
        return respond(request, actor, trace, **state)
    form = AssessmentCreateForm(request.POST)
    if form.is_valid():
        service = services.log_feedback if kind == Assessment.Kind.FEEDBACK else services.log_expectation
        try:
            created = service(
                trace=trace,
                actor=actor,
                channel="ui",
                **_source(request),
                **form.service_kwargs(),
            )
        except PermissionDenied as exc:
            return refused(request, actor, trace, exc)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            return done(
                request,
                actor,
                trace,
                f"Added {created.get_kind_display().lower()} “{created.name}”.",
                focus=created.assessment_id,
            )
    return respond(request, actor, trace, form=form, **state)


@login_required
@require_http_methods(["GET", "POST"])
def feedback_create(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """Add feedback (also another rating under an existing name): GET opens the form, POST saves."""
    return _create(request, trace_id, Assessment.Kind.FEEDBACK)


@login_required
@require_http_methods(["GET", "POST"])
def expectation_create(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """Add an expectation (the correct answer): GET opens the form, POST saves."""
    return _create(request, trace_id, Assessment.Kind.EXPECTATION)


@login_required
@require_POST
def feedback_thumb(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """Thumbs up / down on the main boolean feedback: changes the reviewer's own rating or adds one."""
    actor = Actor.for_user(request.user)
    trace = trace_selectors.trace_for(actor, trace_id)
    form = ThumbForm(request.POST)
    if not form.is_valid():
        return respond(
            request,
            actor,
            trace,
            status=200 if request.htmx else 400,
            message="Choose thumbs up or thumbs down.",
            message_level="error",
        )
    value = form.cleaned_data["value"] == "true"
    assessments = selectors.assessments_for_trace(trace)
    name = form.cleaned_data["name"] or selectors.main_boolean_name(trace.experiment_id, assessments)
    mine = [
        a
        for a in assessments
        if a.valid
        and a.kind == Assessment.Kind.FEEDBACK
        and a.name == name
        and isinstance(a.value, bool)
        and actor.is_author_of(a)
    ]
    try:
        if mine:
            rated = mine[-1]
            if rated.value != value:
                services.update_assessment(assessment=rated, actor=actor, channel="ui", value=value)
        else:
            rated = services.log_feedback(
                trace=trace,
                name=name,
                value=value,
                actor=actor,
                channel="ui",
                **_source(request),
            )
    except PermissionDenied as exc:
        return refused(request, actor, trace, exc)
    except ValidationError as exc:
        return respond(
            request,
            actor,
            trace,
            status=200 if request.htmx else 400,
            message=" ".join(exc.messages),
            message_level="error",
        )
    return done(
        request,
        actor,
        trace,
        f"Rated {name}: thumbs {'up' if value else 'down'}.",
        focus=rated.assessment_id,
    )


@login_required
@require_http_methods(["GET", "POST"])
def assessment_update(request: HtmxHttpRequest, assessment_id: str) -> HttpResponse:
    """Edit value, rationale and metadata in place. The form's `version` guards against
    overwriting someone else's newer edit: a stale save shows both versions (409)."""
    actor = Actor.for_user(request.user)
    assessment, trace = _assessment_and_trace(actor, assessment_id)
    state = {"mode": "edit", "target_id": assessment.assessment_id}
    if request.method == "GET":
        return respond(request, actor, trace, **state)
    form = AssessmentUpdateForm(request.POST)
    if form.is_valid():
        try:
            services.update_assessment(
                assessment=assessment,
                actor=actor,
                channel="ui",
                expected_version=form.cleaned_data["version"],
                **form.service_kwargs(assessment),
            )
        except services.StaleVersion as exc:
            data = request.POST.copy()
            data["version"] = str(exc.assessment.version)
            form = AssessmentUpdateForm(data)
            form.is_valid()
            return respond(
                request,
                actor,
                trace,
                status=409,
                form=form,
                conflict=exc.assessment,
                **state,
            )
        except PermissionDenied as exc:
            return refused(request, actor, trace, exc)
        except ValidationError as exc:
            form.add_service_error(exc)
        except Assessment.DoesNotExist:
            return respond(
                request,
                actor,
                trace,
                status=409,
                message="This assessment was deleted meanwhile.",
                message_level="error",
            )
        else:
            return done(
                request,
                actor,
                trace,
                f"Saved “{assessment.name}”.",
                focus=assessment.assessment_id,
            )
    return respond(request, actor, trace, form=form, **state)


@login_required
@require_http_methods(["GET", "POST"])
def assessment_override(request: HtmxHttpRequest, assessment_id: str) -> HttpResponse:
    """Replace a judge's or code check's feedback with a human correction (the old one stays, struck through)."""
    actor = Actor.for_user(request.user)
    assessment, trace = _assessment_and_trace(actor, assessment_id)
    state = {"mode": "override", "target_id": assessment.assessment_id}
    if request.method == "GET":
        return respond(request, actor, trace, **state)
    form = OverrideForm(request.POST)
    if form.is_valid():
        try:
            correction = services.override_feedback(
                assessment=assessment,
                actor=actor,
                channel="ui",
                value=form.cleaned_data["value"],
                rationale=form.cleaned_data["rationale"],
                **_source(request),
            )
        except PermissionDenied as exc:
            return refused(request, actor, trace, exc)
        except services.Conflict as exc:
            return respond(
                request,
                actor,
                trace,
                status=409,
                message=str(exc),
                message_level="error",
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        except Assessment.DoesNotExist:
            return respond(
                request,
                actor,
                trace,
                status=409,
                message="This assessment was deleted meanwhile.",
                message_level="error",
            )
        else:
            return done(
                request,
                actor,
                trace,
                f"Overrode “{assessment.name}”.",
                focus=correction.assessment_id,
            )
    return respond(request, actor, trace, form=form, **state)


@login_required
@require_http_methods(["GET", "POST"])
def assessment_delete(request: HtmxHttpRequest, assessment_id: str) -> HttpResponse:
    """Delete after a confirmation: htmx asks with hx-confirm; without JavaScript the first POST
    (or a GET) shows a confirm form that posts `confirmed=yes`."""
    actor = Actor.for_user(request.user)
    assessment, trace = _assessment_and_trace(actor, assessment_id)
    if request.method == "GET" or (not request.htmx and request.POST.get("confirmed") != "yes"):
        return respond(request, actor, trace, mode="delete", target_id=assessment.assessment_id)
    try:
        services.delete_assessment(assessment=assessment, actor=actor, channel="ui")
    except PermissionDenied as exc:
        return refused(request, actor, trace, exc)
    return done(
        request,
        actor,
        trace,
        f"Deleted “{assessment.name}”. Its history stays available.",
    )


@login_required
@require_GET
def assessment_history(request: HtmxHttpRequest, assessment_id: str) -> HttpResponse:
    """Every revision of an assessment (who, when, channel, before → after): inline fragment for
    htmx, a page of its own otherwise (also for deleted assessments)."""
    actor = Actor.for_user(request.user)
    revisions = list(selectors.history_visible_to(actor, assessment_id))
    context = {"assessment_id": assessment_id, "revisions": revisions}
    if wants_fragment(request):
        return render(request, "assessments/includes/assessment_history.html", context)
    trace = Trace.objects.filter(pk=revisions[0].trace_id).select_related("experiment").first() if revisions else None
    if trace is None:
        raise Http404("The trace of this assessment no longer exists.")
    context.update(
        {
            "trace": trace,
            "current": Assessment.objects.filter(pk=assessment_id).first(),
            "standalone": True,
        }
    )
    return render(request, "assessments/assessment_history.html", context)
