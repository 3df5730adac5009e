"""MLflow's DeleteTraces (`MlflowClient.delete_traces`, `mlflow traces delete`): by ids or by time.

`POST /api/2.0/mlflow/traces/delete-traces` with `{"experiment_id", "request_ids"}` or
`{"experiment_id", "max_timestamp_millis", "max_traces"}` → `{"traces_deleted": n}`
(docs/mlflow-runs.md §4). Translation only: assessments.trace_deletion decides and writes.
"""

from traces.mlflow_protocol import MlflowError, experiment_or_404, field, json_response, mlflow_endpoint

from .trace_deletion import delete_traces as delete_traces_service


@mlflow_endpoint("POST")
def delete_traces(request, message, actor):
    experiment = experiment_or_404(actor, field(message, "experiment_id", required=True))
    trace_ids = message.get("request_ids", message.get("trace_ids"))
    if trace_ids is not None and not isinstance(trace_ids, list):
        raise MlflowError.invalid("'request_ids' must be a list of trace ids.")
    deletion = delete_traces_service(
        experiment=experiment,
        actor=actor,
        channel="mlflow",
        trace_ids=trace_ids or None,
        max_timestamp_millis=field(message, "max_timestamp_millis", int),
        max_traces=field(message, "max_traces", int),
    )
    return json_response({"traces_deleted": deletion.trace_count if deletion else 0})
