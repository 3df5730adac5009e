"""What the assessments panel needs from the definitions to build its forms."""

from __future__ import annotations

from .cache import rules_for


def panel_definitions(*, experiment_id: int, mode: str | None, add_kind: str, name: str | None) -> dict:
    """Template context for the panel's add / edit / override form: `definition` (the Rule of
    the name being written, if defined for that kind), `defined_rules` (the add form's defined
    names of its kind) and `definitions_required`. No query when the per-worker cache is fresh;
    nothing is read when no form is open."""
    if mode not in ("add", "edit", "override"):
        return {"definition": None, "defined_rules": [], "definitions_required": False}
    rules = rules_for(experiment_id)
    definition = rules.rules.get((name or "").strip())
    if definition is not None and definition.kind != add_kind:
        definition = None
    defined = sorted((rule for rule in rules.rules.values() if rule.kind == add_kind), key=lambda rule: rule.name)
    return {
        "definition": definition,
        "defined_rules": defined if mode == "add" else [],
        "definitions_required": rules.require,
    }
