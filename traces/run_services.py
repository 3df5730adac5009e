"""Writes to runs (what `mlflow.genai.evaluate` records an evaluation as) and trace ↔ run links.

The MLflow surface (traces.mlflow_runs) only translates its messages into these calls. Limits
and rules are MLflow's (docs/mlflow-runs.md): at most 1000 metrics, 100 params and 100 tags per
batch, keys up to 250 characters, param values immutable once logged.
"""

from __future__ import annotations

import math
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from .access import REVIEWER, Actor
from .models import Experiment, Run, RunTrace, Trace

MAX_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 8000
MAX_PARAM_VALUE_LENGTH = 6000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
# A run keeps every metric value in one JSON column; evaluations log a handful.
MAX_METRIC_VALUES_PER_RUN = 10_000
MAX_DATASET_INPUTS = 100
MAX_LINKS_PER_CALL = 100
TAG_RUN_NAME = "mlflow.runName"
TAG_USER = "mlflow.user"
DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")

_ADJECTIVES = ("amber", "brave", "calm", "clever", "eager", "gentle", "keen", "lucid", "merry", "quiet", "swift")
_NOUNS = ("badger", "crane", "finch", "heron", "lynx", "otter", "owl", "panda", "robin", "wren", "yak")


def generate_run_name() -> str:
    """A readable name such as `calm-heron-417`, as MLflow gives unnamed runs."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


def _check_key(key, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError({where: "A key must be a non-empty string."})
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError({where: f"The key '{key[:40]}…' is longer than {MAX_KEY_LENGTH} characters."})
    return key


def _check_value(value, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError({where: "A value must be a string."})
    if len(value) > limit:
        raise ValidationError({where: f"The value is {len(value)} characters long; the limit is {limit}."})
    return value


def _check_time(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValidationError({where: "A time is a non-negative integer of epoch milliseconds."})
    return value


def clean_tags(tags: dict, where: str = "tags") -> dict[str, str]:
    """Tags (key → value strings) checked against MLflow's limits; raises ValidationError."""
    if len(tags) > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationError({where: f"{len(tags)} tags; at most {MAX_PARAMS_TAGS_PER_BATCH} per request."})
    return {
        _check_key(key, f"{where}[{key!r}]"): _check_value(value, f"{where}[{key!r}]", MAX_TAG_VALUE_LENGTH)
        for key, value in tags.items()
    }


def create_run(
    *,
    experiment: Experiment,
    actor: Actor,
    name: str = "",
    user_id: str = "",
    start_time_ms: int | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """Create a RUNNING run in the experiment; a run without a name gets a generated one, kept in
    tag `mlflow.runName` as MLflow does. Raises PermissionDenied and ValidationError."""
    actor.require(experiment.pk, REVIEWER)
    tags = clean_tags(tags or {})
    name = _check_value(name or "", "run_name", MAX_KEY_LENGTH) or tags.get(TAG_RUN_NAME) or generate_run_name()
    user_id = _check_value(user_id or "", "user_id", MAX_KEY_LENGTH) or tags.get(TAG_USER, "")
    tags[TAG_RUN_NAME] = name
    run = Run(
        experiment=experiment,
        name=name,
        user_id=user_id,
        start_time_ms=_check_time(start_time_ms, "start_time"),
        tags=tags,
        created_by=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        created_by_key=actor.api_key,
    )
    run.full_clean()
    run.save(force_insert=True)
    return run


def _locked(run: Run, actor: Actor) -> Run:
    actor.require(run.experiment_id, REVIEWER)
    return Run.objects.select_for_update().get(pk=run.pk)


def update_run(
    *, run: Run, actor: Actor, status: str | None = None, end_time_ms: int | None = None, name: str | None = None
) -> Run:
    """Change a run's status, end time or name (UpdateRun). Raises ValidationError for an unknown status."""
    if status is not None and status not in Run.Status.values:
        raise ValidationError({"status": f"Unknown run status {status!r}; expected one of {', '.join(Run.Status)}."})
    end_time_ms = _check_time(end_time_ms, "end_time")
    with transaction.atomic():
        run = _locked(run, actor)
        fields = []
        if status is not None:
            run.status, fields = status, [*fields, "status"]
        if end_time_ms is not None:
            run.end_time_ms, fields = end_time_ms, [*fields, "end_time_ms"]
        if name:
            run.name = _check_value(name, "run_name", MAX_KEY_LENGTH)
            run.tags = {**run.tags, TAG_RUN_NAME: run.name}
            fields += ["name", "tags"]
        if fields:
            run.save(update_fields=fields)
    return run


def _clean_metric(metric: dict, index: int) -> dict:
    where = f"metrics[{index}]"
    key = _check_key(metric.get("key"), f"{where}.key")
    value = metric.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError({f"{where}.value": "A metric value must be a number."})
    if not math.isfinite(value):  # JSON has no NaN or infinity
        raise ValidationError({f"{where}.value": "A metric value must be a finite number."})
    timestamp = _check_time(metric.get("timestamp", 0), f"{where}.timestamp")
    step = metric.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not -(2**63) <= step < 2**63:
        raise ValidationError({f"{where}.step": "A step must be an integer."})
    return {"key": key, "value": float(value), "timestamp": timestamp or 0, "step": step}


def log_batch(
    *,
    run: Run,
    actor: Actor,
    metrics: list[dict] = (),
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """Add metric values, params and tags to a run (LogBatch, LogMetric, LogParam, SetTag).

    A param keeps its first value: logging another value for it raises ValidationError, as in
    MLflow (the same value again is fine). Raises PermissionDenied and ValidationError.
    """
    params, tags = params or {}, tags or {}
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise ValidationError({"metrics": f"{len(metrics)} metrics; at most {MAX_METRICS_PER_BATCH} per request."})
    if len(params) > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationError({"params": f"{len(params)} params; at most {MAX_PARAMS_TAGS_PER_BATCH} per request."})
    cleaned_metrics = [_clean_metric(metric, index) for index, metric in enumerate(metrics)]
    cleaned_params = {
        _check_key(key, f"params[{key!r}]"): _check_value(value, f"params[{key!r}]", MAX_PARAM_VALUE_LENGTH)
        for key, value in params.items()
    }
    cleaned_tags = clean_tags(tags)
    with transaction.atomic():
        run = _locked(run, actor)
        for key, value in cleaned_params.items():
            if key in run.params and run.params[key] != value:
                raise ValidationError(
                    {
                        f"params[{key!r}]": f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{run.params[key]}'; the new value is '{value}'."
                    }
                )
        if len(run.metrics) + len(cleaned_metrics) > MAX_METRIC_VALUES_PER_RUN:
            raise ValidationError({"metrics": f"A run keeps at most {MAX_METRIC_VALUES_PER_RUN} metric values."})
        fields = []
        if cleaned_metrics:
            run.metrics, fields = [*run.metrics, *cleaned_metrics], [*fields, "metrics"]
        if cleaned_params:
            run.params, fields = {**run.params, **cleaned_params}, [*fields, "params"]
        if cleaned_tags:
            run.tags, fields = {**run.tags, **cleaned_tags}, [*fields, "tags"]
            if TAG_RUN_NAME in cleaned_tags and cleaned_tags[TAG_RUN_NAME] != run.name:
                run.name, fields = cleaned_tags[TAG_RUN_NAME][:MAX_KEY_LENGTH], [*fields, "name"]
        if fields:
            run.save(update_fields=fields)
    return run


def delete_run_tag(*, run: Run, actor: Actor, key: str) -> Run:
    """Remove one tag (DeleteTag); a missing key raises ValidationError, as MLflow answers 400."""
    with transaction.atomic():
        run = _locked(run, actor)
        if key not in run.tags:
            raise ValidationError({"key": f"No tag with name: {key} in run with id {run.run_id}."})
        run.tags = {name: value for name, value in run.tags.items() if name != key}
        run.save(update_fields=["tags"])
    return run


def log_inputs(*, run: Run, actor: Actor, datasets: list[dict]) -> Run:
    """Record dataset inputs (LogInputs): each `{"name", "digest", "source_type", "source", "schema",
    "profile"}` of strings; a dataset with the same name and digest is kept once."""
    cleaned = []
    for index, dataset in enumerate(datasets):
        if not isinstance(dataset, dict):
            raise ValidationError({f"datasets[{index}]": "A dataset input is an object."})
        item = {}
        for name in DATASET_FIELDS:
            value = dataset.get(name)
            if value is not None:
                item[name] = _check_value(value, f"datasets[{index}].{name}", 1_000_000)
        if not item.get("name") or not item.get("digest"):
            raise ValidationError({f"datasets[{index}]": "A dataset needs a name and a digest."})
        cleaned.append(item)
    with transaction.atomic():
        run = _locked(run, actor)
        known = {(dataset["name"], dataset["digest"]) for dataset in run.inputs}
        new = []
        for item in cleaned:
            if (item["name"], item["digest"]) not in known:
                known.add((item["name"], item["digest"]))
                new.append(item)
        if len(run.inputs) + len(new) > MAX_DATASET_INPUTS:
            raise ValidationError({"datasets": f"A run keeps at most {MAX_DATASET_INPUTS} dataset inputs."})
        if new:
            run.inputs = [*run.inputs, *new]
            run.save(update_fields=["inputs"])
    return run


def link_traces(*, run: Run, actor: Actor, trace_ids: list[str]) -> None:
    """Link traces of the run's experiment to the run (LinkTracesToRun); ids of unknown traces or
    of other experiments are skipped, as are existing links."""
    actor.require(run.experiment_id, REVIEWER)
    if len(trace_ids) > MAX_LINKS_PER_CALL:
        raise ValidationError(
            {
                "trace_ids": f"Cannot link more than {MAX_LINKS_PER_CALL} traces to a run in a single request. "
                f"Provided {len(trace_ids)} traces."
            }
        )
    if any(not isinstance(trace_id, str) for trace_id in trace_ids):
        raise ValidationError({"trace_ids": "Trace ids are strings such as 'tr-…'."})
    existing = Trace.objects.filter(pk__in=set(trace_ids), experiment_id=run.experiment_id).values_list("pk", flat=True)
    links = [RunTrace(run=run, trace_id=trace_id) for trace_id in existing]
    RunTrace.objects.bulk_create(links, ignore_conflicts=True)
