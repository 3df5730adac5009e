"""Propose definitions from the data: for each assessment name without a definition, the type,
range and categories its stored values suggest, for an owner to accept or edit.

Reads the experiment's newest valid assessments (at most SAMPLE rows, one query), so the
cost does not grow with the experiment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..models import Assessment
from .models import Definition, DefinitionVersion

SAMPLE = 20_000
# A string name is proposed as a category when it has at most this many distinct values and
# each value appears on average at least twice; otherwise as text.
MAX_CATEGORIES = 20
MAX_SCALE_STEPS = 11


@dataclass
class Proposal:
    name: str
    kind: str
    type: str
    constraints: dict
    count: int  # values seen
    summary: str  # what was seen, in words
    counts: list[tuple[str, int]] = field(default_factory=list)  # categories with their counts
    defined: bool = False  # a definition of this name exists already (archived ones count too)

    def service_kwargs(self) -> dict:
        return {"name": self.name, "kind": self.kind, "type": self.type, **self.constraints}

    def as_version(self) -> DefinitionVersion:
        """An unsaved version shaped like the proposal (to fill the definition form)."""
        definition = Definition(name=self.name, kind=self.kind)
        return DefinitionVersion(definition=definition, type=self.type, constraints=self.constraints)


def _is_number(value) -> bool:
    return type(value) in (int, float)


def propose(values: list, name: str, kind: str) -> Proposal:
    """The definition the values of one name suggest."""
    seen = [value for value in values if value is not None]
    count = len(seen)
    kinds = Counter(
        "boolean"
        if type(value) is bool
        else "number"
        if _is_number(value)
        else "string"
        if isinstance(value, str)
        else "list"
        if isinstance(value, list)
        else "object"
        for value in seen
    )
    if not seen:
        return Proposal(name, kind, "json", {}, 0, "no values (errors only)")
    if len(kinds) > 1:
        mix = ", ".join(f"{n} {what}" for what, n in kinds.most_common())
        return Proposal(name, kind, "json", {}, count, f"mixed values: {mix}")
    (only,) = kinds
    if only == "boolean":
        trues = sum(1 for value in seen if value)
        return Proposal(
            name,
            kind,
            "boolean",
            {},
            count,
            f"{trues} true, {count - trues} false",
            [("true", trues), ("false", count - trues)],
        )
    if only == "number":
        low, high = min(seen), max(seen)
        integer = all(float(value).is_integer() for value in seen)
        constraints = {"min": int(low) if integer else low, "max": int(high) if integer else high, "integer": integer}
        counts = []
        if integer and high - low < MAX_SCALE_STEPS:
            tally = Counter(int(value) for value in seen)
            counts = [(str(step), tally.get(step, 0)) for step in range(int(low), int(high) + 1)]
        noun = "integers" if integer else "numbers"
        return Proposal(name, kind, "number", constraints, count, f"{noun} from {low} to {high}", counts)
    if only == "string":
        tally = Counter(seen)
        if len(tally) <= MAX_CATEGORIES and count >= 2 * len(tally):
            options = [{"value": value} for value, _ in tally.most_common()]
            return Proposal(
                name,
                kind,
                "category",
                {"options": options, "multiple": False},
                count,
                f"{len(tally)} distinct values",
                tally.most_common(),
            )
        longest = max(len(value) for value in seen)
        return Proposal(name, kind, "text", {}, count, f"{len(tally)} distinct texts, the longest {longest} characters")
    if only == "list" and all(isinstance(item, str) for value in seen for item in value):
        tally = Counter(item for value in seen for item in value)
        if 0 < len(tally) <= MAX_CATEGORIES and sum(tally.values()) >= 2 * len(tally):
            options = [{"value": value} for value, _ in tally.most_common()]
            return Proposal(
                name,
                kind,
                "category",
                {"options": options, "multiple": True},
                count,
                f"lists of {len(tally)} distinct values",
                tally.most_common(),
            )
    return Proposal(name, kind, "json", {}, count, f"{count} {only} values")


def proposals_for(experiment_id: int) -> list[Proposal]:
    """One proposal per (name, kind) seen in the experiment's newest valid assessments, by name;
    names that have a definition are marked `defined`. Two queries."""
    rows = (
        Assessment.objects.filter(experiment_id=experiment_id, valid=True)
        .order_by("-create_time")
        .values_list("name", "kind", "value")[:SAMPLE]
    )
    by_name: dict[tuple[str, str], list] = {}
    for name, kind, value in rows:
        by_name.setdefault((name, kind), []).append(value)
    defined = set(Definition.objects.filter(experiment_id=experiment_id).values_list("name", flat=True))
    proposals = []
    for (name, kind), values in sorted(by_name.items()):
        proposal = propose(values, name, kind)
        proposal.defined = name in defined
        proposals.append(proposal)
    return proposals
