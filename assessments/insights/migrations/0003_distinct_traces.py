"""Distinct-trace counts per experiment, feedback name, hour of the trace's request time and
value key, kept by PostgreSQL triggers, so that the insights cards (whose every count is the
number of traces behind its link) add hours up instead of running COUNT(DISTINCT trace) over
millions of ratings (docs/PERFORMANCE.md, "Insights").

`insights_trace_values` holds, per (trace, name, key), how many valid feedback ratings of the
trace under the name carry the key (`m`); only its 0 ↔ 1 transitions move
`insights_traces_hourly.traces`, so a trace rated twice counts once, and counts add up over
hours (a trace lies in one hour). Keys, as the cards read them:

    ''            any valid rating              (the card's traces)
    '~'           a rating with a non-null value (coverage)
    'b:true'      a JSON true / false            (boolean bars)
    's:<text>'    a string, first 200 characters (category bars; longer strings are
                                                  `inexact` in the hourly rollup: read live)
    'n:<number>'  an integral number below 1e6   (the points of integer scales)

Same shape as insights 0001: statement-level triggers with transition tables in the writer's
transaction; the hourly rows are per writer backend (`writer`), folded into writer 0 now and
then. A trace's deletion deletes its assessments first (Django's cascade), which the triggers
count down while the trace is still there to give its hour.

PostgreSQL only, like 0001: SQLite reads the same counts live from the assessments.
"""

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

KEYS = """
    SELECT c.trace_id, c.name, k.key, SIGN AS sign
    FROM ROWS AS c
    CROSS JOIN LATERAL (VALUES
        (''),
        (CASE WHEN coalesce(jsonb_typeof(c.value), 'null') <> 'null' THEN '~' END),
        (CASE jsonb_typeof(c.value)
             WHEN 'boolean' THEN 'b:' || (c.value #>> '{}')
             WHEN 'string' THEN 's:' || left(c.value #>> '{}', 200)
             WHEN 'number' THEN CASE WHEN c.numeric_value = trunc(c.numeric_value) AND abs(c.numeric_value) < 1e6
                                     THEN 'n:' || c.numeric_value::bigint END
         END)
    ) AS k(key)
    WHERE c.kind = 'feedback' AND c.valid AND k.key IS NOT NULL"""


def keys(rows: str, sign: int) -> str:
    return KEYS.replace("ROWS", rows).replace("SIGN", str(sign))


def move(changed: str) -> str:
    """Add `changed` to the multiplicities; the rows that cross 0 ↔ 1 move the hourly counts."""
    return f"""
        WITH changed AS (
            SELECT trace_id, name, key, sum(sign)::integer AS d FROM ({changed}) AS c
            GROUP BY 1, 2, 3 HAVING sum(sign) <> 0
        ), moved AS (
            INSERT INTO insights_trace_values AS v (trace_id, name, key, m, d)
            SELECT trace_id, name, key, d, d FROM changed ORDER BY 1, 2, 3
            ON CONFLICT (trace_id, name, key) DO UPDATE SET m = v.m + excluded.m, d = excluded.d
            RETURNING trace_id, name, key, m, d
        )
        INSERT INTO insights_traces_hourly AS h (experiment_id, name, hour, key, writer, traces)
        SELECT t.experiment_id, moved.name,
               date_trunc('hour', t.request_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', moved.key,
               pg_backend_pid(),
               sum(CASE WHEN moved.m > 0 AND moved.m - moved.d <= 0 THEN 1
                        WHEN moved.m <= 0 AND moved.m - moved.d > 0 THEN -1 ELSE 0 END)
        FROM moved JOIN traces_trace t ON t.trace_id = moved.trace_id
        GROUP BY 1, 2, 3, 4
        HAVING sum(CASE WHEN moved.m > 0 AND moved.m - moved.d <= 0 THEN 1
                        WHEN moved.m <= 0 AND moved.m - moved.d > 0 THEN -1 ELSE 0 END) <> 0
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (experiment_id, name, hour, key, writer) DO UPDATE SET traces = h.traces + excluded.traces;"""


def forget(rows: str) -> str:
    """Drop the multiplicities that fell to 0 (they count nothing)."""
    return f"""
        DELETE FROM insights_trace_values v USING ({keys(rows, -1)}) AS gone
        WHERE v.trace_id = gone.trace_id AND v.name = gone.name AND v.key = gone.key AND v.m = 0;"""


FORWARD = f"""
CREATE TABLE insights_trace_values (
    trace_id varchar(35) NOT NULL,
    name varchar(250) NOT NULL,
    key text NOT NULL,
    m integer NOT NULL,
    d integer NOT NULL,  -- the last change of m: m - d is m before it
    PRIMARY KEY (trace_id, name, key)
);

CREATE TABLE insights_traces_hourly (
    experiment_id bigint NOT NULL,
    name varchar(250) NOT NULL,
    hour timestamptz NOT NULL,
    key text NOT NULL,
    writer integer NOT NULL,
    traces bigint NOT NULL,
    PRIMARY KEY (experiment_id, name, hour, key, writer)
);

CREATE FUNCTION insights_traces_hourly_compact() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM insights_traces_hourly
        WHERE writer <> 0 AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING experiment_id, name, hour, key, traces
    )
    INSERT INTO insights_traces_hourly AS h (experiment_id, name, hour, key, writer, traces)
    SELECT experiment_id, name, hour, key, 0, sum(traces) FROM gone GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (experiment_id, name, hour, key, writer) DO UPDATE SET traces = h.traces + excluded.traces;
    DELETE FROM insights_traces_hourly WHERE writer = 0 AND traces = 0;
$$;

CREATE FUNCTION insights_traces_hourly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM insights_trace_values;
        DELETE FROM insights_traces_hourly;
    ELSIF TG_OP = 'INSERT' THEN
        {move(keys("new_rows", 1))}
        IF random() < 0.001 THEN
            PERFORM insights_traces_hourly_compact();
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        {move(keys("old_rows", -1))}
        {forget("old_rows")}
    ELSE
        {move(keys("new_rows", 1) + " UNION ALL " + keys("old_rows", -1))}
        {forget("old_rows")}
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER insights_traces_hourly_insert
    AFTER INSERT ON assessments_assessment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_hourly();
CREATE TRIGGER insights_traces_hourly_update
    AFTER UPDATE ON assessments_assessment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_hourly();
CREATE TRIGGER insights_traces_hourly_delete
    AFTER DELETE ON assessments_assessment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_hourly();
CREATE TRIGGER insights_traces_hourly_truncate
    AFTER TRUNCATE ON assessments_assessment
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_hourly();

INSERT INTO insights_trace_values (trace_id, name, key, m, d)
SELECT trace_id, name, key, sum(sign), sum(sign) FROM ({keys("assessments_assessment", 1)}) AS existing
GROUP BY 1, 2, 3;

INSERT INTO insights_traces_hourly (experiment_id, name, hour, key, writer, traces)
SELECT t.experiment_id, v.name, date_trunc('hour', t.request_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', v.key, 0,
       count(*)
FROM insights_trace_values v JOIN traces_trace t ON t.trace_id = v.trace_id
GROUP BY 1, 2, 3, 4;
"""

BACKWARD = """
DROP TRIGGER insights_traces_hourly_insert ON assessments_assessment;
DROP TRIGGER insights_traces_hourly_update ON assessments_assessment;
DROP TRIGGER insights_traces_hourly_delete ON assessments_assessment;
DROP TRIGGER insights_traces_hourly_truncate ON assessments_assessment;
DROP FUNCTION insights_traces_hourly();
DROP FUNCTION insights_traces_hourly_compact();
DROP TABLE insights_traces_hourly;
DROP TABLE insights_trace_values;
"""


class Migration(migrations.Migration):
    dependencies = [("insights", "0002_hourly_kinds")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
