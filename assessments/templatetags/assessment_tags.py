"""Display helpers for the assessments panel: revision summaries and value text."""

from __future__ import annotations

from django import template

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
