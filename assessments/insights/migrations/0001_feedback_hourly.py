"""Valid feedback counted per experiment, name, hour of the trace's request time, source type and
value, kept by PostgreSQL triggers: the metrics API and the insights trends read a few thousand
rows instead of aggregating millions (docs/PERFORMANCE.md, "Insights").

Shaped like assessments 0003 (the experiment summary's rollup): statement-level triggers with
transition tables, one grouped upsert per statement in the writer's transaction, each backend
adding to its own rows (`writer`), folded into writer 0 now and then. The hour is the trace's
(joined from traces_trace), so a rating given today on last week's trace lands in last week's
bucket at once. Keys: booleans by 'true' / 'false', strings by their first 200 characters,
numbers by their value to 4 decimals (`number`; `total` keeps the exact sum for means).

PostgreSQL only; SQLite runs the live aggregates. No Django model: only the triggers write it.
"""

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

COUNTED = "c.kind = 'feedback' AND c.valid"
KEYED = (
    """
    SELECT c.experiment_id, c.name,
           date_trunc('hour', t.request_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           c.source_type,
           CASE jsonb_typeof(c.value) WHEN 'boolean' THEN 'boolean' WHEN 'number' THEN 'number'
                WHEN 'string' THEN 'string' ELSE 'other' END AS value_kind,
           CASE jsonb_typeof(c.value) WHEN 'boolean' THEN c.value #>> '{}'
                WHEN 'string' THEN left(c.value #>> '{}', 200) ELSE '' END AS value_key,
           CASE WHEN jsonb_typeof(c.value) <> 'number' OR c.numeric_value IS NULL THEN 0
                WHEN abs(c.numeric_value) < 1e15 THEN round(c.numeric_value::numeric, 4)::float8
                ELSE c.numeric_value END AS number,
           coalesce(c.numeric_value, 0)::numeric AS numeric_value,
           SIGN AS sign
    FROM ROWS AS c JOIN traces_trace t ON t.trace_id = c.trace_id
    WHERE """
    + COUNTED
)
GROUP = "experiment_id, name, hour, source_type, value_kind, value_key, number"


def keyed(rows: str, sign: int) -> str:
    return KEYED.replace("ROWS", rows).replace("SIGN", str(sign))


def upsert(changed: str) -> str:
    return f"""
        INSERT INTO insights_feedback_hourly AS r ({GROUP}, writer, n, total)
        SELECT {GROUP}, pg_backend_pid(), sum(sign), sum(sign * numeric_value)
        FROM ({changed}) AS changed
        GROUP BY {GROUP}
        HAVING sum(sign) <> 0
        ORDER BY {GROUP}
        ON CONFLICT ({GROUP}, writer) DO UPDATE SET n = r.n + excluded.n, total = r.total + excluded.total;"""


FORWARD = f"""
CREATE TABLE insights_feedback_hourly (
    experiment_id bigint NOT NULL,
    name varchar(250) NOT NULL,
    hour timestamptz NOT NULL,
    source_type varchar(20) NOT NULL,
    value_kind varchar(8) NOT NULL,
    value_key text NOT NULL,
    number double precision NOT NULL,
    writer integer NOT NULL,
    n bigint NOT NULL,
    total numeric NOT NULL,  -- numeric: sums of huge floats must not overflow a write
    PRIMARY KEY ({GROUP}, writer)
);

CREATE FUNCTION insights_feedback_hourly_compact() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM insights_feedback_hourly
        WHERE writer <> 0 AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING {GROUP}, n, total
    )
    INSERT INTO insights_feedback_hourly AS r ({GROUP}, writer, n, total)
    SELECT {GROUP}, 0, sum(n), sum(total) FROM gone GROUP BY {GROUP} ORDER BY {GROUP}
    ON CONFLICT ({GROUP}, writer) DO UPDATE SET n = r.n + excluded.n, total = r.total + excluded.total;
    DELETE FROM insights_feedback_hourly WHERE writer = 0 AND n = 0;
$$;

CREATE FUNCTION insights_feedback_hourly() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER insights_feedback_hourly_insert
    AFTER INSERT ON assessments_assessment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_feedback_hourly();
CREATE TRIGGER insights_feedback_hourly_update
    AFTER UPDATE ON assessments_assessment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_feedback_hourly();
CREATE TRIGGER insights_feedback_hourly_delete
    AFTER DELETE ON assessments_assessment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_feedback_hourly();
CREATE TRIGGER insights_feedback_hourly_truncate
    AFTER TRUNCATE ON assessments_assessment
    FOR EACH STATEMENT EXECUTE FUNCTION insights_feedback_hourly();

INSERT INTO insights_feedback_hourly ({GROUP}, writer, n, total)
SELECT {GROUP}, 0, sum(sign), sum(numeric_value) FROM ({keyed("assessments_assessment", 1)}) AS existing
GROUP BY {GROUP};
"""

BACKWARD = """
DROP TRIGGER insights_feedback_hourly_insert ON assessments_assessment;
DROP TRIGGER insights_feedback_hourly_update ON assessments_assessment;
DROP TRIGGER insights_feedback_hourly_delete ON assessments_assessment;
DROP TRIGGER insights_feedback_hourly_truncate ON assessments_assessment;
DROP FUNCTION insights_feedback_hourly();
DROP FUNCTION insights_feedback_hourly_compact();
DROP TABLE insights_feedback_hourly;
"""


class Migration(migrations.Migration):
    dependencies = [("assessments", "0008_definitions"), ("traces", "0008_require_definitions")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
