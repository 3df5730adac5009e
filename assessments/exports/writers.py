"""Export rows → bytes, one chunk at a time: JSONL, CSV and Parquet.

Each writer takes the chunks of `selectors` and yields bytes as soon as a chunk is converted (the
CSV header and Parquet's magic number before the first row is read), so a response or a file
grows while the database is still being read and memory holds one chunk. `progress(n)` is
called with the number of rows (assessments, or traces) after each chunk.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import connection

from feedbackhub.values import StoredJSONDecoder

from . import columns
from .selectors import ExportSpec, assessment_chunks, assessment_jsonl_chunks, trace_chunks

Progress = Callable[[int], None] | None
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_DECODER = StoredJSONDecoder()
# A value's type from the first character of its JSON text (model Assessment.value_type's names).
_TYPE_BY_FIRST = {'"': "string", "{": "object", "[": "list", "t": "boolean", "f": "boolean", "n": "none"}

_OWN = columns.names(columns.ASSESSMENT_OWN)
VALUE, VALUE_TYPE, ERROR, VALID = (_OWN.index(name) for name in ("value", "value_type", "error", "valid"))
_OWN_JSON = [i for i, name in enumerate(_OWN) if name in columns.JSON_TEXT]
_TRACE = columns.names(columns.TRACE_OWN)
_TRACE_JSON = [_TRACE.index("tags"), _TRACE.index("metadata")]
_TRACE_TAGS = _TRACE.index("tags")
_FLAT = columns.names(columns.ASSESSMENT_COLUMNS)
_FLAT_JSON = [1 + i for i in _OWN_JSON] + [_FLAT.index("tags")]
_FLAT_TAGS = _FLAT.index("tags")


def value_type(value_text: str | None, error_text: str | None) -> str:
    """boolean, number, string, list, object, error or none, read off the value's JSON text."""
    kind = "none" if value_text is None else _TYPE_BY_FIRST.get(value_text[:1], "number")
    if kind == "none" and error_text not in (None, "null"):
        return "error"
    return kind


def _with_value_type(row: tuple, offset: int) -> list:
    """The row as a list with its value_type filled in and `valid` a boolean (`offset`: where the
    assessment starts)."""
    row = list(row)
    row[offset + VALUE_TYPE] = value_type(row[offset + VALUE], row[offset + ERROR])
    row[offset + VALID] = bool(row[offset + VALID])  # SQLite sends 0/1
    return row


# --- rows in each format's shape -----------------------------------------------------------------
#
# JSONL embeds the stored JSON texts as they are (orjson.Fragment), without decoding them. A row
# orjson refuses (text that is not valid Unicode, from rows stored before feedbackhub.values
# refused it) is written through the decoder that repairs stored values instead.


def _fragments(row: list, indexes) -> list:
    for index in indexes:
        if row[index] is not None:
            row[index] = orjson.Fragment(row[index])
    return row


def _decoded(row: list, indexes) -> list:
    for index in indexes:
        if row[index] is not None:
            row[index] = _DECODER.decode(row[index])
    return row


def _json_line(keys: list[str], row: list, indexes, nested: tuple | None = None) -> bytes:
    record = dict(zip(keys, _fragments(list(row), indexes)))
    if nested is not None:
        record[nested[0]] = nested[1]
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        record = dict(zip(keys, _decoded(list(row), indexes)))
        if nested is not None:
            record[nested[0]] = [{key: _plain(value) for key, value in item.items()} for item in nested[1]]
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def _plain(value):
    return _DECODER.decode(str(value)) if isinstance(value, orjson.Fragment) else value


def _jsonl_assessments(chunk: list[tuple]) -> list[bytes]:
    return [_json_line(_FLAT, _with_value_type(raw, 1), _FLAT_JSON) for raw in chunk]


def _jsonl_traces(chunk) -> list[bytes]:
    lines = []
    for trace, assessments in chunk:
        nested = [dict(zip(_OWN, _fragments(_with_value_type(raw, 0), _OWN_JSON))) for raw in assessments]
        lines.append(_json_line(_TRACE, list(trace), _TRACE_JSON, ("assessments", nested)))
    return lines


def _csv_assessments(chunk: list[tuple]) -> list[list]:
    return [_with_value_type(raw, 1) for raw in chunk]


def _csv_traces(chunk) -> list[list]:
    rows = []
    empty = [None] * len(_OWN)
    for trace, assessments in chunk:
        if not assessments:
            rows.append([*trace, *empty])
        for raw in assessments:
            rows.append([*trace, *_with_value_type(raw, 0)])
    return rows


def _tags_items(text: str | None) -> list[tuple[str, str]] | None:
    tags = None if text is None else _DECODER.decode(text)
    return None if tags is None else [(str(key), str(value)) for key, value in tags.items()]


def _arrays(rows: list[list], fields) -> list[pa.Array]:
    """Column arrays of `rows`; timestamps arrive as ISO text and are cast by Arrow, vectorised."""
    arrays = []
    for index, field in enumerate(fields):
        values = [row[index] for row in rows]
        if pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, type=pa.string()).cast(field.type))
        else:
            arrays.append(pa.array(values, type=field.type))
    return arrays


def _parquet_assessments(chunk: list[tuple], schema: pa.Schema) -> list[pa.Array]:
    rows = [_with_value_type(raw, 1) for raw in chunk]
    for row in rows:
        row[_FLAT_TAGS] = _tags_items(row[_FLAT_TAGS])
    return _arrays(rows, schema)


def _parquet_traces(chunk, schema: pa.Schema) -> list[pa.Array]:
    traces, nested, offsets = [], [], [0]
    for trace, assessments in chunk:
        row = list(trace)
        row[_TRACE_TAGS] = _tags_items(row[_TRACE_TAGS])
        traces.append(row)
        nested.extend(_with_value_type(raw, 0) for raw in assessments)
        offsets.append(len(nested))
    struct = columns.ASSESSMENT_STRUCT
    items = pa.StructArray.from_arrays(_arrays(nested, list(struct)), fields=list(struct))
    lists = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), items)
    return [*_arrays(traces, list(schema)[:-1]), lists]


# --- the three formats ---------------------------------------------------------------------------


def _chunks_of(spec: ExportSpec):
    return assessment_chunks(spec) if spec.what == "assessments" else trace_chunks(spec)


def _report(progress: Progress, chunk) -> None:
    if progress is not None:
        progress(len(chunk))


def _lines_by_database(spec: ExportSpec) -> bool:
    """Whether the database writes the JSONL lines (selectors.assessment_jsonl_chunks): the same
    bytes as the rows below, at a fraction of the CPU (PostgreSQL, assessments)."""
    return spec.what == "assessments" and connection.vendor == "postgresql"


def _jsonl(spec: ExportSpec, progress: Progress) -> Iterator[bytes]:
    if _lines_by_database(spec):
        for lines, count in assessment_jsonl_chunks(spec):
            yield lines
            if progress is not None:
                progress(count)
        return
    shape = _jsonl_assessments if spec.what == "assessments" else _jsonl_traces
    for chunk in _chunks_of(spec):
        yield b"\n".join(shape(chunk)) + b"\n"
        _report(progress, chunk)


def _csv(spec: ExportSpec, progress: Progress) -> Iterator[bytes]:
    if spec.what == "assessments":
        header, shape = _FLAT, _csv_assessments
    else:
        header, shape = columns.names(columns.TRACE_CSV_COLUMNS), _csv_traces
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    yield buffer.getvalue().encode("utf-8", "replace")
    for chunk in _chunks_of(spec):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(shape(chunk))
        yield buffer.getvalue().encode("utf-8", "replace")
        _report(progress, chunk)


class _Drain:
    """A write-only file for pyarrow that hands its bytes back between row groups."""

    closed = False

    def __init__(self):
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data) -> int:
        data = bytes(data)
        self._parts.append(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _parquet(spec: ExportSpec, progress: Progress) -> Iterator[bytes]:
    if spec.what == "assessments":
        schema, shape = columns.schema(columns.ASSESSMENT_COLUMNS), _parquet_assessments
    else:
        schema, shape = columns.schema(columns.TRACE_COLUMNS), _parquet_traces
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        yield sink.take()
        for chunk in _chunks_of(spec):
            writer.write_table(pa.Table.from_arrays(shape(chunk, schema), schema=schema))
            yield sink.take()
            _report(progress, chunk)
    finally:
        writer.close()
    yield sink.take()


WRITERS = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}


def stream(spec: ExportSpec, fmt: str, *, progress: Progress = None) -> Iterable[bytes]:
    """The export as an iterator of byte strings (empty ones skipped)."""
    return (part for part in WRITERS[fmt](spec, progress) if part)


def filename(spec: ExportSpec, fmt: str) -> str:
    return f"experiment-{spec.experiment.pk}-{spec.what}.{fmt}"
