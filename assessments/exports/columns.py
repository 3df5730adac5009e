"""The columns of an export, in order, with their Parquet (Arrow) types.

JSON columns (`value`, `error`, `metadata`, a trace's `metadata`) are JSON text in CSV and Parquet
(their values mix types) and JSON values in JSONL; `tags` is an object in JSONL, JSON text in CSV
and a map<string, string> in Parquet.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())

# An assessment's own columns (also nested under each trace of a traces export).
ASSESSMENT_OWN = (
    ("assessment_id", pa.string()),
    ("span_id", pa.string()),
    ("kind", pa.string()),
    ("name", pa.string()),
    ("value", pa.string()),
    ("value_type", pa.string()),
    ("error", pa.string()),
    ("rationale", pa.string()),
    ("source_type", pa.string()),
    ("source_id", pa.string()),
    ("metadata", pa.string()),
    ("valid", pa.bool_()),
    ("overrides", pa.string()),
    ("definition_version", pa.int64()),
    ("created_at", TIMESTAMP),
    ("updated_at", TIMESTAMP),
    ("revision_count", pa.int64()),
)
# What an assessments export adds from the assessment's trace.
ASSESSMENT_TRACE = (
    ("session_id", pa.string()),
    ("user_id", pa.string()),
    ("tags", TAGS),
    ("request_preview", pa.string()),
    ("response_preview", pa.string()),
)
ASSESSMENT_COLUMNS = (("trace_id", pa.string()), *ASSESSMENT_OWN, *ASSESSMENT_TRACE)

TRACE_OWN = (
    ("trace_id", pa.string()),
    ("name", pa.string()),
    ("request_time", TIMESTAMP),
    ("state", pa.string()),
    ("execution_time_ms", pa.int64()),
    ("session_id", pa.string()),
    ("user_id", pa.string()),
    ("client_request_id", pa.string()),
    ("tags", TAGS),
    ("metadata", pa.string()),
    ("request_preview", pa.string()),
    ("response_preview", pa.string()),
    ("span_count", pa.int64()),
    ("total_tokens", pa.int64()),
    ("cost", pa.float64()),
)
ASSESSMENT_STRUCT = pa.struct([pa.field(name, kind) for name, kind in ASSESSMENT_OWN])
TRACE_COLUMNS = (*TRACE_OWN, ("assessments", pa.list_(ASSESSMENT_STRUCT)))
# A traces CSV has one row per assessment (a trace without any: one row with them empty).
TRACE_CSV_COLUMNS = (
    *TRACE_OWN,
    *((name if name.startswith("assessment_") else f"assessment_{name}", kind) for name, kind in ASSESSMENT_OWN),
)

# Columns holding JSON text in the database read.
JSON_TEXT = frozenset({"value", "error", "metadata"})


def schema(columns) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in columns])


def names(columns) -> list[str]:
    return [name for name, _ in columns]
