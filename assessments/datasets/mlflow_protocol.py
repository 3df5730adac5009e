"""MLflow's evaluation-dataset endpoints (`/api/3.0/mlflow/datasets/…`) behind
`mlflow.genai.datasets.create_dataset`, `get_dataset`, `search_datasets`, `delete_dataset`
and an EvaluationDataset's `merge_records`, `to_df`, `delete_records` and tags.

Translation only: writes go through `assessments.datasets.services`, reads through its
selectors. Shapes and quirks as recorded from the mlflow 3.18 client and server
(docs/mlflow-datasets.md): tags, schema, profile and records travel as JSON *strings*,
times as epoch milliseconds, and a dataset belongs to one experiment here.
"""

from __future__ import annotations

import hashlib
import json

from django.http import Http404

from traces import mlflow_protocol as protocol
from traces.filters import FilterError

from . import selectors, services
from .models import Dataset, DatasetRecord

MlflowError = protocol.MlflowError
MAX_DATASET_RESULTS = 1000
MAX_RECORD_RESULTS = 1000
# get_dataset's schema is inferred from the first records (the client only reads its input keys).
SCHEMA_SAMPLE = 1000
ORDER_COLUMNS = {"name": "name", "created_time": "created_at", "last_update_time": "updated_at"}


def _dataset_or_404(actor, dataset_id) -> Dataset:
    try:
        return selectors.dataset_for(actor, dataset_id)
    except Http404:
        raise MlflowError.not_found(f"Evaluation dataset with id '{str(dataset_id)[:40]}' not found") from None


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _schema(dataset: Dataset) -> str | None:
    """MLflow's schema JSON: the type of each input and expectation key, and of the outputs."""
    rows = list(selectors.draft_records(dataset).values_list("inputs", "expectations", "outputs")[:SCHEMA_SAMPLE])
    if not rows:
        return None
    inputs, expectations, outputs = {}, {}, {}
    for row_inputs, row_expectations, row_outputs in rows:
        for key, value in (row_inputs or {}).items():
            inputs.setdefault(key, _type_name(value))
        for key, value in (row_expectations or {}).items():
            expectations.setdefault(key, _type_name(value))
        if row_outputs is not None and not isinstance(outputs, str):
            outputs = _type_name(row_outputs)
    return json.dumps({"inputs": inputs, "outputs": outputs, "expectations": expectations, "version": "1.0"})


def dataset_json(dataset: Dataset, *, record_count: int | None = None, schema: bool = True) -> dict:
    """An EvaluationDataset in MLflow's proto JSON."""
    digest = hashlib.sha256(f"{dataset.pk}:{dataset.updated_at.isoformat()}".encode()).hexdigest()[:8]
    data = {
        "dataset_id": dataset.pk,
        "name": dataset.name,
        "tags": json.dumps(dataset.tags or {}),
        "digest": digest,
        "created_time": protocol.epoch_ms(dataset.created_at),
        "last_update_time": protocol.epoch_ms(dataset.updated_at),
        "created_by": dataset.created_by,
        "last_updated_by": dataset.updated_by,
        "experiment_ids": [str(dataset.experiment_id)],
    }
    if record_count is not None:
        data["profile"] = json.dumps({"num_records": record_count})
    if schema:
        inferred = _schema(dataset)
        if inferred is not None:
            data["schema"] = inferred
    return data


def record_json(record: DatasetRecord) -> dict:
    """A DatasetRecord as MLflow's DatasetRecord.to_dict (what GetDatasetRecords lists)."""
    data = {
        "dataset_record_id": record.record_id,
        "dataset_id": record.dataset_id,
        "inputs": record.inputs,
        "expectations": record.expectations or {},
        "tags": record.tags or {},
        "source": {"source_type": record.source_type, "source_data": _source_data(record)},
        "source_type": record.source_type,
        "created_time": protocol.epoch_ms(record.created_at),
        "last_update_time": protocol.epoch_ms(record.updated_at),
        "created_by": record.created_by,
        "last_updated_by": record.updated_by,
        # MLflow answers {} for a record without outputs
        "outputs": record.outputs if record.outputs is not None else {},
    }
    if record.source_trace_id:
        data["source_id"] = record.source_trace_id
    return data


def _source_data(record: DatasetRecord) -> dict:
    data = dict(record.source or {})
    if record.source_trace_id:
        data["trace_id"] = record.source_trace_id
    return data


def _json_string(message: dict, name: str, default):
    raw = message.get(name)
    if raw in (None, ""):
        return default
    if not isinstance(raw, str):
        raise MlflowError.invalid(f"'{name}' must be a JSON string.")
    try:
        return json.loads(raw)
    except ValueError:
        raise MlflowError.invalid(f"'{name}' is not valid JSON.") from None


def _count(dataset: Dataset) -> int:
    return DatasetRecord.objects.filter(dataset=dataset).count()


@protocol.mlflow_endpoint("POST")
def create_dataset(request, message, actor):
    """CreateDataset: the dataset belongs to the one experiment in `experiment_ids`."""
    name = protocol.field(message, "name", required=True)
    ids = message.get("experiment_ids") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or len(ids) != 1:
        raise MlflowError.invalid(
            "A FeedbackHub dataset belongs to exactly one experiment: pass experiment_id (or call "
            f"mlflow.set_experiment first); got {len(ids) if isinstance(ids, list) else 'no'} experiment ids."
        )
    experiment = protocol.experiment_or_404(actor, ids[0])
    tags = _json_string(message, "tags", {})
    dataset = services.create_dataset(experiment=experiment, actor=actor, name=name, tags=tags)
    return protocol.json_response({"dataset": dataset_json(dataset, schema=False)})


@protocol.mlflow_endpoint("GET", "DELETE")
def dataset_detail(request, message, actor, dataset_id):
    """GetDataset (with schema and profile) and DeleteDataset."""
    dataset = _dataset_or_404(actor, dataset_id)
    if request.method == "DELETE":
        services.delete_dataset(dataset=dataset, actor=actor)
        return protocol.json_response({})
    return protocol.json_response({"dataset": dataset_json(dataset, record_count=_count(dataset))})


@protocol.mlflow_endpoint("POST")
def search_datasets(request, message, actor):
    """SearchEvaluationDatasets: MLflow's dataset filter through the one filter language."""
    ids = message.get("experiment_ids") or []
    ids = [ids] if isinstance(ids, str) else ids
    filter_text = protocol.field(message, "filter_string")
    limit = protocol.max_results(message, MAX_DATASET_RESULTS, MAX_DATASET_RESULTS)
    order_by = message.get("order_by") or []
    order_by = [order_by] if isinstance(order_by, str) else order_by
    ordering = []
    for clause in order_by:
        parts = str(clause).split()
        column = ORDER_COLUMNS.get(parts[0].lower()) if parts else None
        if column is None or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise MlflowError.invalid(
                f"Invalid order_by clause {clause!r}: use name, created_time or last_update_time with ASC or DESC."
            )
        ordering.append(("-" if len(parts) == 2 and parts[1].upper() == "DESC" else "") + column)
    ordering = ordering or ["-created_at"]
    fingerprint = protocol.search_fingerprint(ids, filter_text, ordering)
    offset = protocol.decode_page_token(message.get("page_token"), fingerprint)
    try:
        queryset = selectors.search_datasets(actor, experiment_ids=ids, filter_text=filter_text)
    except FilterError as exc:
        raise MlflowError.invalid(f"Invalid filter_string: {exc}") from None
    page = list(queryset.order_by(*ordering, "dataset_id")[offset : offset + limit + 1])
    body = {"datasets": [dataset_json(dataset, schema=False) for dataset in page[:limit]]}
    if len(page) > limit:
        body["next_page_token"] = protocol.encode_page_token(offset + limit, fingerprint)
    return protocol.json_response(body)


@protocol.mlflow_endpoint("GET", "POST", "DELETE")
def dataset_records(request, message, actor, dataset_id):
    """GetDatasetRecords (paged; `records` is a JSON string), UpsertDatasetRecords (merge by
    inputs) and DeleteDatasetRecords."""
    dataset = _dataset_or_404(actor, dataset_id)
    if request.method == "POST":
        records = _json_string(message, "records", None)
        if records is None:
            raise MlflowError.invalid("Missing value for required parameter 'records'.")
        inserted, updated = services.merge_records(dataset=dataset, actor=actor, records=records)
        return protocol.json_response({"inserted_count": inserted, "updated_count": updated})
    if request.method == "DELETE":
        record_ids = message.get("dataset_record_ids") or []
        deleted = services.delete_records(dataset=dataset, actor=actor, record_ids=record_ids)
        return protocol.json_response({"deleted_count": deleted})
    limit = protocol.max_results(message, MAX_RECORD_RESULTS, MAX_RECORD_RESULTS)
    fingerprint = protocol.search_fingerprint(dataset.pk)
    offset = protocol.decode_page_token(message.get("page_token"), fingerprint)
    page = list(selectors.draft_records(dataset)[offset : offset + limit + 1])
    body = {"records": json.dumps([record_json(record) for record in page[:limit]])}
    if len(page) > limit:
        body["next_page_token"] = protocol.encode_page_token(offset + limit, fingerprint)
    return protocol.json_response(body)


@protocol.mlflow_endpoint("GET")
def dataset_experiment_ids(request, message, actor, dataset_id):
    """GetDatasetExperimentIds (EvaluationDataset.experiment_ids)."""
    dataset = _dataset_or_404(actor, dataset_id)
    return protocol.json_response({"experiment_ids": [str(dataset.experiment_id)]})


@protocol.mlflow_endpoint("PATCH")
def dataset_tags(request, message, actor, dataset_id):
    """SetDatasetTags: merge the tags (a JSON string)."""
    dataset = _dataset_or_404(actor, dataset_id)
    services.set_tags(dataset=dataset, actor=actor, tags=_json_string(message, "tags", {}))
    return protocol.json_response({})


@protocol.mlflow_endpoint("DELETE")
def dataset_tag_delete(request, message, actor, dataset_id, key):
    """DeleteDatasetTag."""
    dataset = _dataset_or_404(actor, dataset_id)
    services.set_tags(dataset=dataset, actor=actor, remove=[key])
    return protocol.json_response({})
