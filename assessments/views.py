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

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from traces import selectors as trace_selectors
from traces.access import Actor
from traces.models import SPAN_ID_RE, Trace
from traces.views import HtmxHttpRequest, ListContext, render_trace_page, wants_fragment

from . import selectors, services
from .forms import AssessmentCreateForm, AssessmentUpdateForm, OverrideForm, ThumbForm
from .models import Assessment
from .panel import PANEL_TEMPLATE, panel_context, panel_state_from_params

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
        try:
            created = services.create(
                kind=kind,
                trace=trace,
                actor=actor,
                channel="ui",
                **_source(request),
                **form.service_kwargs(),
            ).assessment
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
    try:
        rated = services.rate(
            trace=trace, actor=actor, channel="ui", value=value, name=form.cleaned_data["name"], **_source(request)
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
        f"Rated {rated.name}: thumbs {'up' if value else 'down'}.",
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
            services.update(
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
            correction = services.override(
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
        services.delete(assessment=assessment, actor=actor, channel="ui")
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
    current = Assessment.objects.filter(pk=assessment_id).first()
    # A deleted assessment is still titled by its name, from the last snapshot that had one.
    snapshots = [r.after or r.before for r in revisions if r.assessment_id == assessment_id]
    names = [s["name"] for s in snapshots if isinstance(s, dict) and s.get("name")]
    context.update(
        {
            "trace": trace,
            "current": current,
            "name": current.name if current is not None else (names[-1] if names else ""),
            "standalone": True,
        }
    )
    return render(request, "assessments/assessment_history.html", context)
