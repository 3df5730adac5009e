"""Insights: feedback analytics per experiment (the page, the metrics API, MLflow's trace metrics).

`selection` says which feedback rows count and how each name is typed; the agreement
statistics can share it. `selectors` aggregates, `links` writes the trace-list filter behind
every number, `views` / `api` / `mlflow_metrics` are the surfaces.
"""
