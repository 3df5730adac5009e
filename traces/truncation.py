"""Oversized spans are stored truncated, never refused (docs/CLIENTS.md, "Span size").

A span whose inputs, outputs, attributes and events take more than FEEDBACKHUB_MAX_SPAN_BYTES as
JSON keeps its structure and loses the bulk of its largest parts: inputs, outputs or an attribute
value become the start of their JSON text followed by MARK; events keep as many as fit. The
attribute TRUNCATED_ATTRIBUTE records, per part cut, its original size in bytes
(`{"inputs": 7340032, "attributes.raw_html": 912000}`), so readers know what they see is partial.
"""

from __future__ import annotations

import json

MARK = "… [truncated by FeedbackHub]"
TRUNCATED_ATTRIBUTE = "feedbackhub.truncated"


def json_size(value) -> int:
    """The size the span limit counts: the value as JSON text (ASCII-escaped)."""
    return len(json.dumps(value, default=str))


def payload_size(inputs, outputs, attributes, events) -> int:
    return json_size([inputs, outputs, attributes, events])


def _shortened(value, budget: int) -> str:
    """The start of `value`'s JSON text (a string as itself) followed by MARK, within `budget` bytes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    keep = max(0, budget)
    cut = text[:keep] + MARK
    # Non-ASCII and escaped characters take more than one byte each: halve until it fits.
    while keep and json_size(cut) > max(budget, 0) + json_size(MARK):
        keep //= 2
        cut = text[:keep] + MARK
    return cut


def _fitting_events(events: list, budget: int) -> list:
    kept, used = [], 2
    for event in events:
        size = json_size(event) + 1
        if used + size > budget:
            break
        kept.append(event)
        used += size
    return kept


def fit(inputs, outputs, attributes: dict, events: list, limit: int):
    """(inputs, outputs, attributes, events) within `limit` bytes, cutting as few parts as
    possible, the largest first, each cut part getting an equal share of the room left.

    Returns the four values and {part: original size} of what was cut (empty when the span
    fits as it is); None when even cutting every part cannot make it fit (thousands of small
    attributes), which the caller refuses.
    """
    parts = {"inputs": inputs, "outputs": outputs, "events": events}
    parts.update({f"attributes.{key}": value for key, value in attributes.items()})
    sizes = {name: json_size(value) for name, value in parts.items()}
    total = payload_size(inputs, outputs, attributes, events)
    if total <= limit:
        return inputs, outputs, attributes, events, {}
    structure = total - sum(sizes.values()) + json_size({TRUNCATED_ATTRIBUTE: {}})
    largest = sorted(sizes, key=sizes.get, reverse=True)
    for count in range(1, len(largest) + 1):
        cut_names, kept = largest[:count], largest[count:]
        # Each cut part also costs its mark and its entry in TRUNCATED_ATTRIBUTE.
        reserve = sum(json_size(MARK) + json_size(name) + 24 for name in cut_names)
        share = (limit - structure - sum(sizes[name] for name in kept) - reserve) // count
        if share >= 0:
            break
    else:
        return None
    for name in cut_names:
        parts[name] = _fitting_events(parts[name], share) if name == "events" else _shortened(parts[name], share)
    fitted_attributes = {key: parts[f"attributes.{key}"] for key in attributes}
    fitted_attributes[TRUNCATED_ATTRIBUTE] = {name: sizes[name] for name in cut_names}
    fitted = (parts["inputs"], parts["outputs"], fitted_attributes, parts["events"])
    if payload_size(*fitted) > limit:
        return None
    return (*fitted, fitted_attributes[TRUNCATED_ATTRIBUTE])
