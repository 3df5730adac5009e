"""The queue pages: all queues, one queue (items, progress, add and remove), a new queue, adding
the trace list's matching traces, and focus mode (one item at a time, from the keyboard).

Plain forms: POST, one service call, redirect (or the page again with the bound form and its
errors, status 200). Reads come from the selectors; writes only happen on POST.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments import selectors as assessment_selectors
from assessments.definitions.cache import rules_for
from assessments.services import Conflict as AssessmentConflict
from traces import selectors as trace_selectors
from traces.access import OWNER, REVIEWER, Actor, visible_experiments
from traces.filters import FilterError
from traces.models import Membership

from . import selectors, services
from .forms import AddItemsForm, QueueForm, parse_answers

COUNT_CAP = 100_000


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(
            f"{field}: {' '.join(msgs)}" if field != "__all__" else " ".join(msgs)
            for field, msgs in exc.message_dict.items()
        )
    return " ".join(exc.messages)


# --- all queues, one queue --------------------------------------------------------------------------


@login_required
@require_GET
def queue_list(request):
    """Every queue the user can see, with progress bars; links to create one where they own."""
    actor = Actor.for_user(request.user)
    queues = selectors.visible_queues(actor, include_archived=request.GET.get("archived") == "1")
    owned = _owned_experiments(actor)
    return render(request, "queues/queue_list.html", {"queues": queues, "owned": owned})


def _owned_experiments(actor: Actor) -> list:
    return [experiment for experiment in visible_experiments(actor).order_by("name") if actor.can(experiment.pk, OWNER)]


@login_required
@require_GET
def queue_detail(request, queue_id: int):
    """A queue: per-reviewer progress, its items by state (with who answered), add and remove."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for(actor, queue_id)
    state = request.GET.get("state", "open")
    if state not in selectors.ITEM_STATES:
        state = "open"
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    return _detail_page(request, actor, queue, state=state, page=page)


def _detail_page(request, actor, queue, *, state="open", page=1, form=None, status=200):
    items, more = selectors.items_page(queue, state=state, page=page)
    progress = selectors.progress(queue)
    can_manage = actor.can(queue.experiment_id, OWNER)
    return render(
        request,
        "queues/queue_detail.html",
        {
            "queue": queue,
            "items": items,
            "more": more,
            "page": page,
            "state": state,
            "states": selectors.ITEM_STATES,
            "progress": progress,
            "percent": round(100 * progress["complete"] / progress["total"]) if progress["total"] else 0,
            "can_manage": can_manage,
            "can_review": actor.can(queue.experiment_id, REVIEWER) and not queue.is_archived,
            "form": form if form is not None else AddItemsForm(),
            "reviewer_names": sorted(queue.reviewers.values_list("username", flat=True)),
        },
        status=status,
    )


@login_required
@require_POST
def queue_items_add(request, queue_id: int):
    """Add traces by ids or by a filter (with a limit); the counts come back as a message."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for(actor, queue_id)
    form = AddItemsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            counts = services.add_items(
                queue=queue,
                actor=actor,
                trace_ids=data["ids"],
                filter=data["filter_text"],
                limit=data.get("limit"),
                restore=data.get("restore", False),
            )
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(
                request,
                f"Added {counts['added']}; {counts['already_queued']} already queued; "
                f"{counts['previously_removed']} removed before (tick “Re-add removed items” to bring them back).",
            )
            return redirect("queues:queue_detail", queue.pk)
    return _detail_page(request, actor, queue, form=form)


@login_required
@require_POST
def queue_item_remove(request, queue_id: int, trace_id: str):
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for(actor, queue_id)
    services.remove_item(queue=queue, actor=actor, trace_id=trace_id)
    messages.success(request, f"Removed {trace_id} from the queue.")
    return redirect(
        reverse("queues:queue_detail", args=[queue.pk]) + "?" + urlencode({"state": request.POST.get("state", "open")})
    )


@login_required
@require_POST
def queue_archive(request, queue_id: int):
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for(actor, queue_id)
    services.update_queue(queue=queue, actor=actor, archived=not queue.is_archived)
    return redirect("queues:queue_detail", queue.pk)


# --- a new queue -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def queue_create(request, experiment_id: int):
    """GET: the form (questions from the experiment's definitions). POST: create, then the queue."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    if not actor.can(experiment.pk, OWNER):
        raise PermissionDenied("Only the experiment's owners create queues.")
    question_names = sorted(rules_for(experiment.pk).rules)
    reviewer_names = sorted(
        Membership.objects.filter(
            experiment=experiment, role__in=[Membership.Role.REVIEWER, Membership.Role.OWNER]
        ).values_list("user__username", flat=True)
    )
    form = QueueForm(request.POST or None, question_names=question_names, reviewer_names=reviewer_names)
    if request.method == "POST" and form.is_valid():
        try:
            queue = services.create_queue(experiment=experiment, actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Queue “{queue.name}” created; add traces below.")
            return redirect("queues:queue_detail", queue.pk)
    return render(request, "queues/queue_form.html", {"experiment": experiment, "form": form})


# --- from the trace list ------------------------------------------------------------------------------


@login_required
@require_GET
def matching_count(request, experiment_id: int):
    """The trace list's link, with the number of traces its filter matches (loaded after the list)."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    text = request.GET.get("filter", "")
    try:
        count = trace_selectors.search_traces(actor, experiment_ids=[experiment.pk], filter_text=text)[
            : COUNT_CAP + 1
        ].count()
    except FilterError:
        return HttpResponse("")
    return render(
        request,
        "queues/includes/add_matching_link.html",
        {"experiment": experiment, "filter": text, "count": count, "capped": count > COUNT_CAP},
    )


@login_required
@require_http_methods(["GET", "POST"])
def add_matching(request, experiment_id: int):
    """GET: pick a queue for the trace list's matching traces. POST: add them (up to the limit)."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    text = request.POST.get("filter", request.GET.get("filter", ""))
    queues = selectors.active_queues_of(experiment)
    error = None
    if request.method == "POST":
        try:
            queue = next((q for q in queues if str(q.pk) == request.POST.get("queue")), None)
            if queue is None:
                raise ValidationError({"queue": "Pick a queue."})
            try:
                limit = int(request.POST.get("limit") or services.DEFAULT_FILTER_LIMIT)
            except ValueError:
                raise ValidationError({"limit": "A whole number."}) from None
            counts = services.add_items(queue=queue, actor=actor, filter=text, limit=limit)
        except ValidationError as exc:
            error = _error_text(exc)
        else:
            messages.success(
                request,
                f"Added {counts['added']} traces; {counts['already_queued']} already queued, "
                f"{counts['previously_removed']} removed before.",
            )
            return redirect("queues:queue_detail", queue.pk)
    try:
        count = trace_selectors.search_traces(actor, experiment_ids=[experiment.pk], filter_text=text)[
            : COUNT_CAP + 1
        ].count()
    except FilterError as exc:
        count, error = 0, str(exc)
    return render(
        request,
        "queues/add_matching.html",
        {
            "experiment": experiment,
            "filter": text,
            "count": min(count, COUNT_CAP),
            "capped": count > COUNT_CAP,
            "queues": queues,
            "limit": min(max(count, 1), services.MAX_ADD),
            "error": error,
            "can_manage": actor.can(experiment.pk, OWNER),
        },
        status=200,
    )


# --- focus mode ---------------------------------------------------------------------------------------


@login_required
@require_GET
def queue_review(request, queue_id: int):
    """Focus mode. ?trace=<id>: that item (leased to or answered by the reviewer); ?done=1: the
    all-done state; neither: the reviewer's current lease, or a start button (POST next)."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for_work(actor, queue_id)
    user = services.reviewer_of(queue, actor)
    trace_id = request.GET.get("trace")
    if not trace_id and not request.GET.get("done"):
        trace_id = selectors.current_lease(queue, user)
    return _focus(request, actor, queue, user, trace_id, done=bool(request.GET.get("done")))


def _focus(request, actor, queue, user, trace_id, *, done=False, answers=None, errors=None, message=None, status=200):
    rules = rules_for(queue.experiment_id).rules
    questions = [rules[name] for name in queue.questions if name in rules]
    context = {
        "queue": queue,
        "questions": _widgets(questions, answers or {}, errors or {}),
        "progress": selectors.progress(queue),
        "mine": selectors.answered_count(queue, user),
        "done": done,
        "message": message,
        "errors": errors or {},
        "item": None,
        "other_queues": selectors.other_open_queues(actor, queue) if done else [],
    }
    if trace_id:
        item = selectors.item_for_review(queue, user, trace_id)
        if item is None:
            raise Http404(f"Trace {trace_id} is not an item of this queue.")
        work = item.mine
        if work is None or work.state == "declined" or (work.state == "leased" and not work.expires_at):
            context["message"] = message or "This item is not leased to you; ask for the next one."
        else:
            trace = trace_selectors.trace_for_detail(actor, trace_id)
            spans = list(trace.spans.all())
            root = next((s for s in spans if not s.parent_span_id), spans[0] if spans else None)
            shown = assessment_selectors.assessments_for_trace(trace, actor)
            given = answers if answers is not None else _my_answers(work, shown)
            context["questions"] = _widgets(questions, given, errors or {})
            context.update(
                {
                    "item": item,
                    "work": work,
                    "trace": trace,
                    "root": root,
                    "spans": _span_strip(spans),
                    "others": [a for a in shown if a.valid and a.name in queue.questions and not actor.is_author_of(a)],
                    "hidden_count": len(trace.assessments.all()) - len(shown),
                    "previous": selectors.previous_answered(
                        queue, user, trace_id if work.state == "answered" else None
                    ),
                }
            )
    else:
        context["previous"] = selectors.previous_answered(queue, user, None)
    return render(request, "queues/queue_review.html", context, status=status)


def _widgets(questions, given: dict, errors: dict) -> list[dict]:
    """Each question as its widget shows it: the rule, the kind of input, its choices (value,
    label, description, digit key, checked) and the current value."""
    widgets = []
    for rule in questions:
        value = given.get(rule.name)
        choices, widget = [], "input"
        if rule.type == "boolean":
            widget = "choice"
            choices = [("true", "Yes", "", "1", value is True), ("false", "No", "", "2", value is False)]
        elif rule.type == "number" and rule.levels:
            widget = "choice"
            choices = [
                (str(step), str(step), text, str(step) if 0 <= step <= 9 else "", value == step)
                for step, text in rule.levels
            ]
        elif rule.type == "category":
            widget = "multiple" if rule.constraints.get("multiple") else "choice"
            picked = value if isinstance(value, list) else [value]
            choices = [
                (
                    option["value"],
                    option.get("label") or option["value"],
                    option.get("description", ""),
                    str(n) if n <= 9 else "",
                    option["value"] in picked,
                )
                for n, option in enumerate(rule.constraints.get("options", []), start=1)
            ]
        elif rule.type in ("text", "json"):
            widget = "text"
        widgets.append(
            {
                "rule": rule,
                "widget": widget,
                "choices": choices,
                "value": "" if value is None else (json.dumps(value) if rule.type == "json" else value),
                "error": errors.get(rule.name),
            }
        )
    return widgets


def _my_answers(work, shown) -> dict:
    """The reviewer's stored answers by question (to change them), as the widgets compare them."""
    ids = set((work.assessment_ids or {}).values())
    return {a.name: a.value for a in shown if a.assessment_id in ids}


def _span_strip(spans) -> list[dict]:
    """The span tree as (depth, span) rows for the folded strip."""
    children: dict = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    rows, stack = [], [(0, s) for s in reversed(children.get(None, []))]
    known = {s.span_id for s in spans}
    stack += [(0, s) for s in spans if s.parent_span_id and s.parent_span_id not in known]
    while stack:
        depth, span = stack.pop()
        rows.append({"depth": depth, "span": span})
        stack += [(depth + 1, c) for c in reversed(children.get(span.span_id, []))]
    return rows


@login_required
@require_POST
def queue_review_next(request, queue_id: int):
    """Lease the next item and show it (or the all-done state)."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for_work(actor, queue_id)
    return _to_next(queue, actor)


def _to_next(queue, actor):
    url = reverse("queues:queue_review", args=[queue.pk])
    try:
        work = services.next_item(queue=queue, actor=actor)
    except AssessmentConflict:
        return redirect(url + "?done=1")
    if work is None:
        return redirect(url + "?done=1")
    return redirect(url + "?" + urlencode({"trace": work.item.trace_id}))


@login_required
@require_POST
def queue_review_answer(request, queue_id: int, trace_id: str):
    """Answer the item from the focus form, then the next item (or the page again with errors)."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for_work(actor, queue_id)
    user = services.reviewer_of(queue, actor)
    rules = rules_for(queue.experiment_id).rules
    answers, rationale, errors = parse_answers([rules[n] for n in queue.questions if n in rules], request.POST)
    if not errors:
        try:
            _, created = services.answer(
                queue=queue, actor=actor, trace_id=trace_id, answers=answers, rationale=rationale
            )
        except ValidationError as exc:
            return _focus(request, actor, queue, user, trace_id, answers=answers, message=_error_text(exc))
        except AssessmentConflict as exc:
            return _focus(request, actor, queue, user, trace_id, answers=answers, message=str(exc))
        if not created and request.POST.get("then") != "next":
            messages.success(request, "Answer changed.")
        return _to_next(queue, actor)
    return _focus(request, actor, queue, user, trace_id, answers=answers, errors=errors)


@login_required
@require_POST
def queue_review_decline(request, queue_id: int, trace_id: str):
    """Decline the item (optional reason), then the next item."""
    actor = Actor.for_user(request.user)
    queue = selectors.queue_for_work(actor, queue_id)
    user = services.reviewer_of(queue, actor)
    try:
        services.decline(queue=queue, actor=actor, trace_id=trace_id, reason=request.POST.get("reason", "")[:2000])
    except AssessmentConflict as exc:
        return _focus(request, actor, queue, user, trace_id, message=str(exc))
    return _to_next(queue, actor)
