"""Streaming exports of an experiment's assessments or traces as JSONL, CSV or Parquet.

    GET /api/v1/experiments/{experiment_id}/export?what=assessments|traces&format=jsonl|csv|parquet
        &filter=<the filter language>&start_time=&end_time=
    manage.py export --experiment NAME --what assessments --format parquet --output out.parquet

`selectors` reads the rows through one server-side cursor (PostgreSQL) in chunks, one query per
export (traces: one more per chunk of traces for their assessments), never one per row;
`writers` turns each chunk into bytes as it arrives, so memory stays flat and the first bytes
leave at once. `columns` names every column and its Parquet type. On PostgreSQL the
assessments JSONL lines are written by the database (`selectors.assessment_jsonl_chunks`, the same
bytes), so Python only passes them on.
"""
