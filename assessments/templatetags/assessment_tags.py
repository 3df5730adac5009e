"""Display helpers for the assessments panel: revision summaries, value text and the item cards."""

from __future__ import annotations

from html import escape

from django import template
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from traces.templatetags.trace_tags import (
    clamped_text,
    compact_json,
    exact_time,
    icon,
    json_tree,
    num,
    reltime,
    visible_html,
)

from ..models import Assessment

register = template.Library()

# Fields a reviewer cares about in a revision, in the order they are listed.
SHOWN_FIELDS = ("value", "error", "rationale", "name", "metadata", "span_id", "valid")
ACTION_VERBS = {
    "create": "created",
    "update": "edited",
    "override": "overrode",
    "delete": "deleted",
    "restore": "restored",
    "invalidate": "invalidated",
}


def _empty(value) -> bool:
    return value in (None, "", {}, [])


@register.filter
def describe_revision(revision, assessment_id: str) -> dict:
    """What a revision means for the assessment whose history is shown.

    Returns {"verb", "other" (the related assessment id or None), "changes": [(field, before, after)]}:
    a create lists the initial fields (before is None); an override is told from both sides
    ("overridden by" on the replaced assessment, "replaced" on the new one).
    """
    before, after = revision.before or {}, revision.after or {}
    other = None
    if revision.action == "create":
        verb = "created"
        changes = [
            (key, None, after.get(key))
            for key in SHOWN_FIELDS
            if key not in ("valid", "name") and not _empty(after.get(key))
        ]
    elif revision.action == "override":
        if revision.assessment_id == assessment_id:
            verb, other = "created as a correction of", revision.related_assessment_id
        else:
            verb, other = "overridden by", revision.assessment_id
        changes = [
            (key, before.get(key), after.get(key))
            for key in ("value", "error", "rationale")
            if before.get(key) != after.get(key)
        ]
        if before.get("source_type") != after.get("source_type") or before.get("source_id") != after.get("source_id"):
            changes.append(
                (
                    "source",
                    f"{before.get('source_type')} {before.get('source_id')}".strip(),
                    f"{after.get('source_type')} {after.get('source_id')}".strip(),
                )
            )
    elif revision.action == "delete":
        if revision.assessment_id == assessment_id:
            verb = "deleted"
            changes = []
            other = revision.related_assessment_id
            if other:
                verb = "deleted (the overridden assessment became valid again)"
        else:
            verb, other = (
                "valid again: its override was deleted",
                revision.assessment_id,
            )
            changes = []
    else:
        verb = ACTION_VERBS.get(revision.action, revision.action)
        changes = [(key, old, new) for key, old, new in revision.changes if key in SHOWN_FIELDS]
        changes.sort(key=lambda change: SHOWN_FIELDS.index(change[0]))
    return {"verb": verb, "other": other, "changes": changes}


@register.filter
def value_word(value) -> str:
    """A boolean value in words, for screen readers next to a thumb icon."""
    return "thumbs up" if value is True else "thumbs down" if value is False else ""


# --- assessment cards -------------------------------------------------------------------------------
# A trace may carry hundreds of assessments. Through the template language each card cost ~0.25 ms
# (100 cards were most of the trace page's render time); built here, like the span tree, ~0.03 ms.
# The markup is the one the template produced. Every value is escaped (`escape` for text, `_text` for
# what `{{ value }}` would localize first). The panel template keeps the item an action targets
# (its edit, override, delete or history form), which reuses `assessment_card`.


# get_source_type_display() / get_kind_display() without their per-call choice hashing.
SOURCE_LABELS = dict(Assessment.SourceType.choices)
KIND_LABELS = dict(Assessment.Kind.choices)


def _text(value) -> str:
    """What `{{ value }}` prints: the value localized, then escaped (unless already safe)."""
    return conditional_escape(localize(value))


def _error_field(error, key: str):
    """`{{ a.error.<key> }}`: the field of an error dict, '' when missing."""
    return error.get(key, "") if isinstance(error, dict) else ""


def value_html(a) -> str:
    """An assessment's value: thumb, number, label chip, long text, error, or folded JSON."""
    value_type = a.value_type
    value = a.value
    if value_type == "boolean":
        word = value_word(value)
        direction = "up" if value else "down"
        return (
            f'<span class="thumb-value {direction}" title="{word}">{icon(f"thumb-{direction}", 16)}'
            f'<span class="sr-only">{word}</span></span>'
        )
    if value_type == "number":
        return f'<span class="num-value">{escape(num(value))}</span>'
    if value_type == "string":
        if len(value) <= 60:
            return f'<span class="label-chip"><bdi>{visible_html(value)}</bdi></span>'
        return clamped_text(value, "long-text")
    if value_type == "error":
        error = a.error
        out = f'<span class="error-value">{icon("alert", 14)} {_text(_error_field(error, "error_code"))}</span>'
        message = _error_field(error, "error_message")
        if message:
            out += f' <span class="muted"><bdi>{visible_html(message)}</bdi></span>'
        stack = _error_field(error, "stack_trace")
        if stack:
            out += (
                f'<details class="stack"><summary>Stack trace</summary><pre class="mono">{_text(stack)}</pre></details>'
            )
        return out
    if value_type == "none":
        return '<span class="muted">no value</span>'
    return (
        f'<details class="json-value"><summary class="mono">{escape(compact_json(value, 40))}</summary>'
        f"{json_tree(value)}</details>"
    )


def _shared_parts(context) -> tuple[str, str, str, str]:
    """The per-panel pieces every card repeats, escaped once: trace URL, panel URL, hidden inputs, CSRF input."""
    token = context.get("csrf_token")
    csrf = ""
    if token and token != "NOTPROVIDED":
        csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(str(token))}">'
    return (
        escape(str(context.get("trace_url") or "")),
        escape(str(context.get("panel_url") or "")),
        str(conditional_escape(context.get("ctx_inputs") or "")),
        csrf,
    )


def _parts(context) -> tuple[str, str, str, str]:
    """`_shared_parts`, computed once per render state (a template or partial being rendered)."""
    parts = context.render_context.get("assessment_card_parts")
    if parts is None:
        parts = context.render_context["assessment_card_parts"] = _shared_parts(context)
    return parts


@register.simple_tag(takes_context=True)
def assessment_item(context, a) -> SafeString:
    """An item of the panel with no form open: `<li>`, its card and the empty history slot.
    (The item an action targets is the panel template's `item` partial.)"""
    aid = escape(a.assessment_id)
    classes = "item" + ("" if a.valid else " is-overridden") + (" is-mine" if a.is_mine else "")
    focus = " data-focus" if context.get("focus_id") == a.assessment_id else ""
    return mark_safe(
        f'\n<li class="{classes}" id="a-{aid}" tabindex="-1" data-assessment{focus}>\n'
        f"{_card(a, _parts(context))}\n"
        f'<div id="history-{aid}" class="history-slot"></div>\n</li>\n'
    )


@register.simple_tag(takes_context=True)
def assessment_card(context, a) -> SafeString:
    """An item's content: value, who, when, rationale, target span, metadata, the override links
    and the action buttons (edit, override, history, delete)."""
    return mark_safe(_card(a, _parts(context)))


def _card(a, parts: tuple[str, str, str, str]) -> str:
    """The card's HTML; `a` carries the flags and links `panel_context` sets on every assessment."""
    trace_url, panel_url, ctx_inputs, csrf = parts
    aid = escape(a.assessment_id)
    name = escape(a.name)
    when = timezone.localtime(a.create_time) if a.create_time else None
    title = exact_time(when)
    if a.version > 1:
        title += f" · last change {exact_time(a.last_update_time)}"
    out = [
        '<div class="item-line">\n<span class="value">',
        value_html(a),
        f'</span>\n<span class="who"><span class="source source-{escape(a.source_type.lower())}">'
        f"{escape(SOURCE_LABELS.get(a.source_type, a.source_type))}</span> "
        f'<span class="source-id"><bdi>{visible_html(a.source_id) if a.source_id else "—"}</bdi></span></span>\n'
        f'<time datetime="{when.isoformat() if when else ""}" title="{escape(title)}">'
        f"{escape(reltime(when))}</time>\n</div>\n",
    ]
    if a.rationale:
        out.append(f"{clamped_text(a.rationale, 'rationale')}\n")
    if a.span_id:
        span = escape(a.span_id)
        out.append(
            f'<a class="span-ref" href="{trace_url}?span={span}" data-select-span="{span}" title="Show span {span}">'
            f'{icon("target", 13)}<span class="sr-only">Attached to span </span>'
            f"<span><bdi>{visible_html(a.span_name) if a.span_name else span}</bdi></span></a>\n"
        )
    metadata = a.metadata
    if metadata:
        rows = (
            "".join(
                f'<div><dt class="mono"><bdi>{visible_html(k)}</bdi></dt><dd><bdi>{visible_html(localize(v))}</bdi></dd></div>'
                for k, v in metadata.items()
            )
            if isinstance(metadata, dict)
            else ""
        )
        out.append(
            f'<details class="item-meta"><summary>metadata <span class="count">{len(metadata)}</span></summary>'
            f'<dl class="kv-list">{rows}</dl></details>\n'
        )
    replacement = a.replacement
    if replacement:
        out.append(
            f'<p class="replaced">{icon("arrow-right", 13)} overridden by '
            f'<a href="#a-{escape(replacement.assessment_id)}">{value_html(replacement)} '
            f'<span class="muted">{escape(replacement.source_id)}</span></a></p>\n'
        )
    elif not a.valid:
        out.append('<p class="replaced">overridden</p>\n')
    replaced = a.replaced
    if replaced:
        out.append(
            f'<p class="corrects">corrects <a href="#a-{escape(replaced.assessment_id)}">'
            f"{escape(SOURCE_LABELS.get(replaced.source_type, replaced.source_type))} {escape(replaced.source_id)}</a></p>\n"
        )
    out.append(
        f'<div class="item-actions">\n<form method="get" action="{trace_url}#a-{aid}" hx-get="{panel_url}">{ctx_inputs}'
    )
    if a.can_edit:
        out.append(
            f'<button type="submit" name="edit" value="{aid}" class="icon-btn" data-edit aria-label="Edit {name}" '
            f'title="Edit (e)">{icon("edit")}</button>'
        )
    if a.can_override:
        out.append(
            f'<button type="submit" name="override" value="{aid}" class="icon-btn" aria-label="Override {name}" '
            f'title="Override with a human correction">{icon("override")}</button>'
        )
    history_url = escape(a.history_url)
    out.append(
        f'<button type="submit" name="history" value="{aid}" class="icon-btn" hx-get="{history_url}" '
        f'hx-target="#history-{aid}" hx-swap="outerHTML" aria-label="History of {name}" aria-controls="history-{aid}" '
        f'title="History">{icon("history")}</button></form>\n'
    )
    if a.can_edit:
        delete_url = escape(a.delete_url)
        question = f"Delete {KIND_LABELS.get(a.kind, a.kind).lower()} “{a.name}” ({compact_json(a.value, 30)})? The history is kept."
        out.append(
            f'<form method="post" action="{delete_url}" hx-post="{delete_url}" hx-confirm="{escape(question)}">'
            f'{csrf}{ctx_inputs}<button type="submit" class="icon-btn danger" aria-label="Delete {name}" '
            f'title="Delete">{icon("trash")}</button></form>\n'
        )
    out.append("</div>")
    return "".join(out)
