"""Traces per experiment and hour of request time, kept by PostgreSQL triggers on traces_trace,
so that the insights cards' coverage (valid values / traces in range) does not count a month of
traces row by row (~0.5 s at 1M traces; docs/PERFORMANCE.md, "Insights").

Same shape as insights 0001: statement-level triggers with transition tables, per-writer rows
folded into writer 0 now and then; an update counts only where the experiment or the hour moved.
PostgreSQL only: SQLite counts the traces live.
"""

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

HOUR = "date_trunc('hour', request_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def upsert(changed: str) -> str:
    return f"""
        INSERT INTO insights_traces_per_hour AS h (experiment_id, hour, writer, traces)
        SELECT experiment_id, hour, pg_backend_pid(), sum(sign) FROM ({changed}) AS changed
        GROUP BY 1, 2 HAVING sum(sign) <> 0 ORDER BY 1, 2
        ON CONFLICT (experiment_id, hour, writer) DO UPDATE SET traces = h.traces + excluded.traces;"""


def rows(table: str, sign: int) -> str:
    return f"SELECT experiment_id, {HOUR} AS hour, {sign} AS sign FROM {table}"


MOVED = f"""
    SELECT o.experiment_id, {HOUR.replace("request_time", "o.request_time")} AS hour, -1 AS sign
    FROM old_rows o JOIN new_rows n ON n.trace_id = o.trace_id
    WHERE n.experiment_id <> o.experiment_id OR n.request_time <> o.request_time
    UNION ALL
    SELECT n.experiment_id, {HOUR.replace("request_time", "n.request_time")}, 1
    FROM old_rows o JOIN new_rows n ON n.trace_id = o.trace_id
    WHERE n.experiment_id <> o.experiment_id OR n.request_time <> o.request_time"""

FORWARD = f"""
CREATE TABLE insights_traces_per_hour (
    experiment_id bigint NOT NULL,
    hour timestamptz NOT NULL,
    writer integer NOT NULL,
    traces bigint NOT NULL,
    PRIMARY KEY (experiment_id, hour, writer)
);

CREATE FUNCTION insights_traces_per_hour_compact() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM insights_traces_per_hour
        WHERE writer <> 0 AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING experiment_id, hour, traces
    )
    INSERT INTO insights_traces_per_hour AS h (experiment_id, hour, writer, traces)
    SELECT experiment_id, hour, 0, sum(traces) FROM gone GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (experiment_id, hour, writer) DO UPDATE SET traces = h.traces + excluded.traces;
    DELETE FROM insights_traces_per_hour WHERE writer = 0 AND traces = 0;
$$;

CREATE FUNCTION insights_traces_per_hour() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM insights_traces_per_hour;
    ELSIF TG_OP = 'INSERT' THEN
        {upsert(rows("new_rows", 1))}
        IF random() < 0.001 THEN
            PERFORM insights_traces_per_hour_compact();
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        {upsert(rows("old_rows", -1))}
    ELSE
        {upsert(MOVED)}
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER insights_traces_per_hour_insert
    AFTER INSERT ON traces_trace REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_per_hour();
CREATE TRIGGER insights_traces_per_hour_update
    AFTER UPDATE ON traces_trace REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_per_hour();
CREATE TRIGGER insights_traces_per_hour_delete
    AFTER DELETE ON traces_trace REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_per_hour();
CREATE TRIGGER insights_traces_per_hour_truncate
    AFTER TRUNCATE ON traces_trace
    FOR EACH STATEMENT EXECUTE FUNCTION insights_traces_per_hour();

INSERT INTO insights_traces_per_hour (experiment_id, hour, writer, traces)
SELECT experiment_id, hour, 0, count(*) FROM ({rows("traces_trace", 1)}) AS existing GROUP BY 1, 2;
"""

BACKWARD = """
DROP TRIGGER insights_traces_per_hour_insert ON traces_trace;
DROP TRIGGER insights_traces_per_hour_update ON traces_trace;
DROP TRIGGER insights_traces_per_hour_delete ON traces_trace;
DROP TRIGGER insights_traces_per_hour_truncate ON traces_trace;
DROP FUNCTION insights_traces_per_hour();
DROP FUNCTION insights_traces_per_hour_compact();
DROP TABLE insights_traces_per_hour;
"""


class Migration(migrations.Migration):
    dependencies = [("insights", "0004_number_grid")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
