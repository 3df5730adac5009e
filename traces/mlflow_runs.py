"""The MLflow REST protocol for runs and trace ↔ run links (docs/mlflow-runs.md).

What `mlflow.genai.evaluate` and `mlflow traces evaluate` call: runs create / get / update /
search, log-batch (metrics, params, tags), set-tag, delete-tag, log-metric, log-parameter,
log-inputs, and traces link-to-run. Translation only: reads through traces.run_selectors,
writes through traces.run_services.
"""

from __future__ import annotations

import re

from django.db.models import F, Q
from django.db.models.lookups import Exact
from django.http import Http404

from . import run_selectors, run_services
from .filters import ILike, JSONKeyText, Like
from .mlflow_protocol import (
    MlflowError,
    decode_page_token,
    encode_page_token,
    experiment_or_404,
    field,
    json_response,
    max_results,
    mlflow_endpoint,
    resolve_experiment_id,
    search_fingerprint,
)
from .models import Run

MAX_SEARCH_RUNS = 50_000
DEFAULT_SEARCH_RUNS = 1000


def run_info_json(run: Run) -> dict:
    info = {
        "run_uuid": run.run_id,
        "run_id": run.run_id,
        "experiment_id": str(run.experiment_id),
        "run_name": run.name,
        "user_id": run.user_id,
        "status": run.status,
        "artifact_uri": f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts",
        "lifecycle_stage": "active",
    }
    if run.start_time_ms is not None:
        info["start_time"] = run.start_time_ms
    if run.end_time_ms is not None:
        info["end_time"] = run.end_time_ms
    return info


def _pairs(mapping: dict) -> list[dict]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def run_json(run: Run) -> dict:
    """The Run message: info, data (latest metric values, params, tags), inputs, outputs."""
    data = {}
    metrics = list(run.latest_metrics.values())
    if metrics:
        data["metrics"] = metrics
    if run.params:
        data["params"] = _pairs(run.params)
    if run.tags:
        data["tags"] = _pairs(run.tags)
    inputs = {"dataset_inputs": [{"dataset": dataset} for dataset in run.inputs]} if run.inputs else {}
    return {"info": run_info_json(run), "data": data, "inputs": inputs, "outputs": {}}


def _run(actor, message: dict) -> Run:
    run_id = field(message, "run_id") or field(message, "run_uuid")
    if not run_id:
        raise MlflowError.invalid("Missing value for required parameter 'run_id'.")
    try:
        return run_selectors.run_for(actor, run_id)
    except Http404:
        raise MlflowError.not_found(f"Run with id={run_id[:40]} not found") from None


def _key_values(message: dict, name: str) -> dict[str, str]:
    """A repeated {"key", "value"} field as a dict; 400 naming the field for anything else."""
    items = message.get(name) or []
    if not isinstance(items, list):
        raise MlflowError.invalid(f'\'{name}\' must be a list of {{"key": …, "value": …}} objects.')
    result = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise MlflowError.invalid(f"{name}[{index}] must be an object with a string 'key'.")
        value = item.get("value", "")
        if not isinstance(value, str):
            raise MlflowError.invalid(f"{name}[{index}].value must be a string.")
        result[item["key"]] = value
    return result


def _metrics(message: dict) -> list[dict]:
    items = message.get("metrics") or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MlflowError.invalid('\'metrics\' must be a list of {"key", "value", "timestamp", "step"} objects.')
    return items


def _int(message: dict, name: str) -> int | None:
    value = field(message, name, int)
    if value is not None and not 0 <= value < 2**63:
        raise MlflowError.invalid(f"Invalid value {value} for parameter '{name}': out of range.")
    return value


# --- runs --------------------------------------------------------------------------------------


@mlflow_endpoint("POST")
def run_create(request, message, actor):
    experiment = experiment_or_404(actor, field(message, "experiment_id") or "0")
    run = run_services.create_run(
        experiment=experiment,
        actor=actor,
        name=field(message, "run_name", default=""),
        user_id=field(message, "user_id", default=""),
        start_time_ms=_int(message, "start_time"),
        tags=_key_values(message, "tags"),
    )
    return json_response({"run": run_json(run)})


@mlflow_endpoint("GET")
def run_get(request, message, actor):
    return json_response({"run": run_json(_run(actor, message))})


@mlflow_endpoint("POST")
def run_update(request, message, actor):
    run = run_services.update_run(
        run=_run(actor, message),
        actor=actor,
        status=field(message, "status"),
        end_time_ms=_int(message, "end_time"),
        name=field(message, "run_name"),
    )
    return json_response({"run_info": run_info_json(run)})


@mlflow_endpoint("POST")
def run_log_batch(request, message, actor):
    run_services.log_batch(
        run=_run(actor, message),
        actor=actor,
        metrics=_metrics(message),
        params=_key_values(message, "params"),
        tags=_key_values(message, "tags"),
    )
    return json_response({})


@mlflow_endpoint("POST")
def run_log_metric(request, message, actor):
    metric = {key: message.get(key) for key in ("key", "value", "timestamp", "step") if key in message}
    run_services.log_batch(run=_run(actor, message), actor=actor, metrics=[metric])
    return json_response({})


@mlflow_endpoint("POST")
def run_log_param(request, message, actor):
    key = field(message, "key", required=True)
    run_services.log_batch(run=_run(actor, message), actor=actor, params={key: field(message, "value", default="")})
    return json_response({})


@mlflow_endpoint("POST")
def run_set_tag(request, message, actor):
    key = field(message, "key", required=True)
    run_services.log_batch(run=_run(actor, message), actor=actor, tags={key: field(message, "value", default="")})
    return json_response({})


@mlflow_endpoint("POST")
def run_delete_tag(request, message, actor):
    run_services.delete_run_tag(run=_run(actor, message), actor=actor, key=field(message, "key", required=True))
    return json_response({})


@mlflow_endpoint("POST")
def run_log_inputs(request, message, actor):
    datasets = message.get("datasets") or []
    if not isinstance(datasets, list) or not all(isinstance(item, dict) for item in datasets):
        raise MlflowError.invalid("'datasets' must be a list of {\"dataset\": {…}} objects.")
    run_services.log_inputs(run=_run(actor, message), actor=actor, datasets=[item.get("dataset") for item in datasets])
    return json_response({})


# --- search ------------------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<entity>[A-Za-z_]+)\.(?P<key>`[^`]+`|"[^"]+"|[\w./:-]+)\s*
        (?P<op>!=|<=|>=|=|<|>|\bNOT\s+LIKE\b|\bLIKE\b|\bILIKE\b)\s*
        (?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_ENTITIES = {
    "tags": "tags",
    "tag": "tags",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "parameter": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_RUN_ATTRIBUTES = {
    "status": "status",
    "run_name": "name",
    "run_id": "run_id",
    "user_id": "user_id",
    "start_time": "start_time_ms",
    "end_time": "end_time_ms",
}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">="}


def _split_clauses(text: str) -> list[re.Match]:
    """The clauses of a run filter (AND only, as MLflow), each matched in full; 400 otherwise."""
    clauses, position = [], 0
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None:
            raise MlflowError.invalid(f"Invalid filter '{text}': cannot parse the clause at '{text[position:][:40]}'.")
        clauses.append(match)
        position = match.end()
        if position < len(text):
            joiner = _AND.match(text, position - 1) or _AND.match(text, position)
            if joiner is None:
                raise MlflowError.invalid(f"Invalid filter '{text}': clauses are joined with AND.")
            position = joiner.end()
    return clauses


def _literal(raw: str):
    if raw[0] in "'\"":
        return raw[1:-1].replace(raw[0] * 2, raw[0])
    return float(raw)


def _text_match(expression, op: str, value, clause: str) -> Q:
    if not isinstance(value, str):
        raise MlflowError.invalid(f"Invalid filter clause '{clause}': expected a quoted string value.")
    op = op.upper()
    if op == "=":
        return Q(Exact(expression, value))
    if op == "!=":
        return ~Q(Exact(expression, value))
    if op == "LIKE":
        return Q(Like(expression, value))
    if op == "ILIKE":
        return Q(ILike(expression, value))
    if op == "NOT LIKE":
        return ~Q(Like(expression, value))
    raise MlflowError.invalid(f"Invalid filter clause '{clause}': '{op}' does not apply to strings.")


def _compare(number: float, op: str, value: float) -> bool:
    return {
        "=": number == value,
        "!=": number != value,
        "<": number < value,
        "<=": number <= value,
        ">": number > value,
        ">=": number >= value,
    }[op]


def filter_runs(queryset, text: str | None):
    """Runs narrowed by an MLflow run filter: a queryset condition for tags, params and attributes,
    and a list of (key, op, value) metric tests to apply to the runs' latest metrics."""
    condition, metric_tests = Q(), []
    for match in _split_clauses(text or ""):
        clause = match.group(0).strip()
        entity = _ENTITIES.get(match["entity"].lower())
        key = match["key"].strip('`"')
        op = re.sub(r"\s+", " ", match["op"].upper())
        value = _literal(match["value"])
        if entity is None:
            raise MlflowError.invalid(
                f"Invalid entity type '{match['entity']}' in '{clause}': use tags., params., metrics. or attributes."
            )
        if entity in ("tags", "params"):
            condition &= _text_match(JSONKeyText(entity, key), op, value, clause)
        elif entity == "metrics":
            if op not in _NUMBER_OPS or isinstance(value, str):
                raise MlflowError.invalid(f"Invalid filter clause '{clause}': metrics compare with a number.")
            metric_tests.append((key, op, value))
        elif key.lower() in ("start_time", "end_time"):
            if op not in _NUMBER_OPS or isinstance(value, str):
                raise MlflowError.invalid(f"Invalid filter clause '{clause}': times compare with a number.")
            lookup = {"=": "", "!=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}[op]
            test = Q(**{f"{_RUN_ATTRIBUTES[key.lower()]}{lookup}": int(value)})
            condition &= ~test if op == "!=" else test
        elif key.lower() in _RUN_ATTRIBUTES:
            condition &= _text_match(F(_RUN_ATTRIBUTES[key.lower()]), op, value, clause)
        else:
            raise MlflowError.invalid(
                f"Invalid attribute key '{key}' in '{clause}': use status, run_name, run_id, user_id, "
                "start_time or end_time."
            )
    return queryset.filter(condition), metric_tests


_ORDER = re.compile(r"^\s*(?:(?:attributes?|attr|run)\.)?`?(\w+)`?\s*(ASC|DESC)?\s*$", re.IGNORECASE)


def order_runs(queryset, order_by):
    if isinstance(order_by, str):
        order_by = [order_by]
    if order_by is not None and not isinstance(order_by, list):
        raise MlflowError.invalid("'order_by' must be a list of strings such as ['attributes.start_time DESC'].")
    expressions = []
    for clause in order_by or []:
        match = _ORDER.match(clause) if isinstance(clause, str) else None
        column = _RUN_ATTRIBUTES.get(match[1].lower()) if match else None
        if column is None:
            raise MlflowError.invalid(
                f"Invalid order_by clause {clause!r}: sort by attributes.start_time, end_time, run_name or status."
            )
        expression = F(column)
        descending = (match[2] or "ASC").upper() == "DESC"
        expressions.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
    return queryset.order_by(*expressions, F("start_time_ms").desc(nulls_last=True), "run_id")


@mlflow_endpoint("POST", "GET")
def run_search(request, message, actor):
    """SearchRuns over the experiments the key may read; newest first by default."""
    experiment_ids = message.get("experiment_ids") or []
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    if not isinstance(experiment_ids, list) or not experiment_ids:
        raise MlflowError.invalid("Missing value for required parameter 'experiment_ids'.")
    experiments = [experiment_or_404(actor, resolve_experiment_id(actor, item)) for item in experiment_ids]
    view_type = field(message, "run_view_type", default="ACTIVE_ONLY")
    if view_type not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise MlflowError.invalid(f"Invalid run_view_type {view_type!r}: ACTIVE_ONLY, DELETED_ONLY or ALL.")
    text = field(message, "filter", default="")
    queryset, metric_tests = filter_runs(Run.objects.filter(experiment__in=experiments), text)
    if view_type == "DELETED_ONLY":  # FeedbackHub does not keep deleted runs
        queryset = queryset.none()
    queryset = order_runs(queryset, message.get("order_by"))
    size = max_results(message, limit=MAX_SEARCH_RUNS, default=DEFAULT_SEARCH_RUNS)
    fingerprint = search_fingerprint("runs", [e.pk for e in experiments], text, message.get("order_by"), view_type)
    offset = decode_page_token(field(message, "page_token"), fingerprint)
    if metric_tests:  # metric values live in a JSON list: tested here, on the experiment's runs
        runs = [
            run
            for run in queryset
            if all(
                key in run.latest_metrics and _compare(run.latest_metrics[key]["value"], op, value)
                for key, op, value in metric_tests
            )
        ][offset : offset + size + 1]
    else:
        runs = list(queryset[offset : offset + size + 1])
    data = {"runs": [run_json(run) for run in runs[:size]]}
    if len(runs) > size:
        data["next_page_token"] = encode_page_token(offset + size, fingerprint)
    return json_response(data)


# --- trace ↔ run links -------------------------------------------------------------------------


@mlflow_endpoint("POST")
def link_traces_to_run(request, message, actor):
    trace_ids = message.get("trace_ids") or []
    if not isinstance(trace_ids, list):
        raise MlflowError.invalid("'trace_ids' must be a list of trace ids.")
    run_services.link_traces(run=_run(actor, message), actor=actor, trace_ids=trace_ids)
    return json_response({})
