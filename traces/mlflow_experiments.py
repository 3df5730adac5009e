"""The MLflow REST protocol's experiment endpoints: get-by-name, create, get, search (and list).

`mlflow.set_experiment(name)` calls get-by-name, then create when the answer is "does not
exist", then get-by-name again when create answers "already exists". Experiment names are
unique across the server, as in MLflow, so a name another key's experiment holds cannot be
created; get-by-name therefore answers 403 for it (the client raises), never "does not exist",
which made the client's set_experiment return None and send the traces elsewhere. That the name
is taken is all the 403 tells (docs/RELIABILITY.md, "Experiment names").

Search filters on `name` with =, !=, LIKE and ILIKE. LIKE patterns are matched by
`like_matcher` in linear time per name, never by a regex the database backtracks over; the
query itself runs under feedbackhub.timeouts.bounded_search.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import PermissionDenied

from feedbackhub.timeouts import bounded_search

from . import services
from .access import visible_experiments
from .mlflow_protocol import (
    MlflowError,
    decode_page_token,
    encode_page_token,
    epoch_ms,
    experiment_or_404,
    field,
    json_response,
    max_results,
    mlflow_endpoint,
    search_fingerprint,
)
from .models import Experiment


def experiment_json(experiment: Experiment) -> dict:
    data = {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.pk}",
        "lifecycle_stage": "active",
        "last_update_time": epoch_ms(experiment.updated_at),
        "creation_time": epoch_ms(experiment.created_at),
        "workspace": "default",
    }
    if experiment.description:
        data["tags"] = [{"key": "mlflow.note.content", "value": experiment.description}]
    return data


@mlflow_endpoint("GET")
def experiment_get_by_name(request, message, actor):
    name = field(message, "experiment_name", required=True)
    experiment = Experiment.objects.filter(name=name).first()
    if experiment is None:
        raise MlflowError.not_found(f"Could not find experiment with name '{name}'")
    if actor.role(experiment.pk) is None:
        raise PermissionDenied(
            f"The experiment name '{name}' is taken by an experiment this API key cannot use "
            "(names are unique across the server). Ask an owner to add it to the key, or choose another name."
        )
    return json_response({"experiment": experiment_json(experiment)})


@mlflow_endpoint("POST")
def experiment_create(request, message, actor):
    name = field(message, "name", required=True)
    try:
        experiment = services.create_experiment(name=name, actor=actor)
    except services.Conflict:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.") from None
    return json_response({"experiment_id": str(experiment.pk)})


@mlflow_endpoint("GET")
def experiment_get(request, message, actor):
    experiment_id = field(message, "experiment_id", required=True)
    return json_response({"experiment": experiment_json(experiment_or_404(actor, experiment_id))})


_NAME_FILTER = re.compile(r"^\s*(?:attributes?\.)?name\s*(=|!=|LIKE|ILIKE)\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def like_matcher(pattern: str, *, ignore_case: bool = False) -> Callable[[str], bool]:
    """A test of SQL LIKE `pattern` (% any text, _ one character, nothing escaped) that runs in
    O(len(name) × len(pattern)) whatever the pattern.

    The pattern splits at % into fixed-length pieces; the first must start the name, the last
    end it, and each middle piece is found leftmost after the one before. Leftmost is always
    right for fixed-length pieces, so nothing is ever retried (a backtracking regex retries
    every split, which froze the server on `%a%a%a%a%a%a%b` against 250 a's).
    """
    if ignore_case:
        pattern = pattern.lower()
    pieces = [
        (len(piece), re.compile("".join("." if char == "_" else re.escape(char) for char in piece), re.DOTALL))
        for piece in pattern.split("%")
    ]
    fixed = sum(length for length, _ in pieces)
    (first_length, first), (last_length, last) = pieces[0], pieces[-1]

    def matches(name: str) -> bool:
        if ignore_case:
            name = name.lower()
        if len(pieces) == 1:
            return first.fullmatch(name) is not None
        if fixed > len(name) or first.fullmatch(name, 0, first_length) is None:
            return False
        end = len(name) - last_length
        if last.fullmatch(name, end) is None:
            return False
        position = first_length
        for length, piece in pieces[1:-1]:
            if length:
                found = piece.search(name, position, end)
                if found is None:
                    return False
                position = found.end()
        return True

    return matches


@mlflow_endpoint("GET", "POST")
def experiment_search(request, message, actor):
    """SearchExperiments (also the old ListExperiments): filters `name = '…'` / `name LIKE '…'`."""
    queryset = visible_experiments(actor).order_by("-created_at", "pk")
    text = field(message, "filter")
    matches = None
    if text:
        match = _NAME_FILTER.match(text)
        if not match:
            raise MlflowError.invalid(
                f"Invalid filter '{text}': experiments can be filtered by name = / != / LIKE / ILIKE '…'."
            )
        operator, value = match[1].upper(), match[2].replace("''", "'")
        if operator == "=":
            queryset = queryset.filter(name=value)
        elif operator == "!=":
            queryset = queryset.exclude(name=value)
        else:
            matches = like_matcher(value, ignore_case=operator == "ILIKE")
    size = max_results(message, limit=50000, default=1000)
    fingerprint = search_fingerprint("experiments", text)
    offset = decode_page_token(field(message, "page_token"), fingerprint)
    with bounded_search():  # SearchTimeout: mlflow_endpoint answers 400
        if matches is None:
            rows = list(queryset[offset : offset + size + 1])
        else:
            ids = [pk for pk, name in queryset.values_list("pk", "name") if matches(name)]
            page = ids[offset : offset + size + 1]
            found = Experiment.objects.in_bulk(page)
            rows = [found[pk] for pk in page if pk in found]
    data = {"experiments": [experiment_json(experiment) for experiment in rows[:size]]}
    if len(rows) > size:
        data["next_page_token"] = encode_page_token(offset + size, fingerprint)
    return json_response(data)
