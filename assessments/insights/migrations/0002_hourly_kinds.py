"""The hourly rollup (insights 0001) also counts expectations (`kind`), so that MLflow's
QueryTraceMetrics, which counts both kinds, reads it too, and counts per row the ratings whose
value its key does not carry exactly (`inexact`: a number other than `number`, a string longer
than the 200 characters kept in `value_key`), and keeps JSON nulls (`value_kind` 'null') apart
from objects, arrays and integers beyond a float's range ('other', no numeric value), so that the
sums behind means are exact whatever the key. Minimum, maximum and percentiles are read from the
rollup only where that count is 0; counts, sums and means always are.

The table is rebuilt from the assessments (its key changes); the trigger functions are replaced
in place (same names, so the triggers of 0001 keep calling them). PostgreSQL only.
"""

from importlib import import_module

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

NUMBER = """CASE WHEN jsonb_typeof(c.value) <> 'number' OR c.numeric_value IS NULL THEN 0
                WHEN abs(c.numeric_value) < 1e15 THEN round(c.numeric_value::numeric, 4)::float8
                ELSE c.numeric_value END"""
KEYED = f"""
    SELECT c.experiment_id, c.kind, c.name,
           date_trunc('hour', t.request_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           c.source_type,
           CASE coalesce(jsonb_typeof(c.value), 'null') WHEN 'boolean' THEN 'boolean'
                WHEN 'number' THEN CASE WHEN c.numeric_value IS NULL THEN 'other' ELSE 'number' END
                WHEN 'string' THEN 'string' WHEN 'null' THEN 'null'
                ELSE 'other' END AS value_kind,
           CASE jsonb_typeof(c.value) WHEN 'boolean' THEN c.value #>> '{{}}'
                WHEN 'string' THEN left(c.value #>> '{{}}', 200) ELSE '' END AS value_key,
           {NUMBER} AS number,
           coalesce(c.numeric_value, 0)::numeric AS numeric_value,
           CASE jsonb_typeof(c.value)
                WHEN 'number' THEN (c.numeric_value IS NOT NULL AND c.numeric_value <> {NUMBER})::int
                WHEN 'string' THEN (length(c.value #>> '{{}}') > 200)::int ELSE 0 END AS inexact,
           SIGN AS sign
    FROM ROWS AS c JOIN traces_trace t ON t.trace_id = c.trace_id
    WHERE c.valid"""
GROUP = "experiment_id, kind, name, hour, source_type, value_kind, value_key, number"


def keyed(rows: str, sign: int) -> str:
    return KEYED.replace("ROWS", rows).replace("SIGN", str(sign))


def upsert(changed: str) -> str:
    return f"""
        INSERT INTO insights_feedback_hourly AS r ({GROUP}, writer, n, total, inexact)
        SELECT {GROUP}, pg_backend_pid(), sum(sign), sum(sign * numeric_value), sum(sign * inexact)
        FROM ({changed}) AS changed
        GROUP BY {GROUP}
        HAVING sum(sign) <> 0
        ORDER BY {GROUP}
        ON CONFLICT ({GROUP}, writer) DO UPDATE
        SET n = r.n + excluded.n, total = r.total + excluded.total, inexact = r.inexact + excluded.inexact;"""


TABLE = f"""
DROP TABLE insights_feedback_hourly;
CREATE TABLE insights_feedback_hourly (
    experiment_id bigint NOT NULL,
    kind varchar(12) NOT NULL,
    name varchar(250) NOT NULL,
    hour timestamptz NOT NULL,
    source_type varchar(20) NOT NULL,
    value_kind varchar(8) NOT NULL,
    value_key text NOT NULL,
    number double precision NOT NULL,
    writer integer NOT NULL,
    n bigint NOT NULL,
    total numeric NOT NULL,  -- numeric: sums of huge floats must not overflow a write
    inexact bigint NOT NULL,
    PRIMARY KEY ({GROUP}, writer)
);"""


FORWARD = f"""
{TABLE}

CREATE OR REPLACE FUNCTION insights_feedback_hourly_compact() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM insights_feedback_hourly
        WHERE writer <> 0 AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING {GROUP}, n, total, inexact
    )
    INSERT INTO insights_feedback_hourly AS r ({GROUP}, writer, n, total, inexact)
    SELECT {GROUP}, 0, sum(n), sum(total), sum(inexact) FROM gone GROUP BY {GROUP} ORDER BY {GROUP}
    ON CONFLICT ({GROUP}, writer) DO UPDATE
    SET n = r.n + excluded.n, total = r.total + excluded.total, inexact = r.inexact + excluded.inexact;
    DELETE FROM insights_feedback_hourly WHERE writer = 0 AND n = 0;
$$;

CREATE OR REPLACE FUNCTION insights_feedback_hourly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM insights_feedback_hourly;
    ELSIF TG_OP = 'INSERT' THEN
        {upsert(keyed("new_rows", 1))}
        IF random() < 0.001 THEN
            PERFORM insights_feedback_hourly_compact();
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        {upsert(keyed("old_rows", -1))}
    ELSE
        {upsert(keyed("new_rows", 1) + " UNION ALL " + keyed("old_rows", -1))}
    END IF;
    RETURN NULL;
END;
$$;

INSERT INTO insights_feedback_hourly ({GROUP}, writer, n, total, inexact)
SELECT {GROUP}, 0, sum(sign), sum(numeric_value), sum(inexact)
FROM ({keyed("assessments_assessment", 1)}) AS existing
GROUP BY {GROUP};
"""

# Back to 0001: its tables, functions and triggers, rebuilt by its own SQL.
_0001 = import_module("assessments.insights.migrations.0001_feedback_hourly")
BACKWARD = _0001.BACKWARD + _0001.FORWARD


class Migration(migrations.Migration):
    dependencies = [("insights", "0001_feedback_hourly")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
