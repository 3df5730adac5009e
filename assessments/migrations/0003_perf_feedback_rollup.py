"""Per experiment and name, the counts of valid feedback, kept by PostgreSQL triggers.

The experiment's feedback summary (`selectors.feedback_stats_by_experiment`) aggregated
every valid feedback row: ~0.35 µs per row, most of a second at 2.5 M. The triggers below
keep the same three counts (feedback, boolean feedback, thumbs up) per experiment and name
in `assessments_feedback_rollup`, so the summary reads a few rows instead (docs/PERFORMANCE.md).

- Statement-level triggers with transition tables: one grouped upsert per INSERT / UPDATE /
  DELETE / COPY statement, whatever the number of rows, in the writer's transaction (a
  rolled-back write leaves no count behind). TRUNCATE (test flushes) empties the rollup.
- Each backend adds to its own row (`writer` = its pid), so concurrent writers never wait on
  one another's counter rows. Now and then (one insert statement in a thousand) the rows of
  backends that have gone are folded into `writer` 0.
- The row conditions are the selector's: `kind = 'feedback' AND valid` counts, booleans are
  `numeric_value IN (0, 1)` with a JSON true / false value, ups are a JSON true.

PostgreSQL only: on SQLite the selector runs the live aggregate. The table is no Django
model (nothing but the triggers writes it), so the ORM and `makemigrations` do not see it.
"""

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

# The selector's conditions (feedback_stats_by_experiment, IS_BOOLEAN).
COUNTED = "kind = 'feedback' AND valid"
BOOLEAN = "numeric_value IN (0, 1) AND value IN ('true', 'false')"
UP = "value = 'true'"


def upsert(changed: str) -> str:
    """Add the counts of `changed` (rows with a `sign` of 1 or -1) to the calling backend's rollup
    rows, in a fixed order; groups whose counts do not move are skipped."""
    return f"""
        INSERT INTO assessments_feedback_rollup AS r (experiment_id, name, writer, n, booleans, ups)
        SELECT experiment_id, name, pg_backend_pid(), sum(sign),
               coalesce(sum(sign) FILTER (WHERE {BOOLEAN}), 0), coalesce(sum(sign) FILTER (WHERE {UP}), 0)
        FROM ({changed}) AS changed
        GROUP BY experiment_id, name
        HAVING sum(sign) <> 0 OR sum(sign) FILTER (WHERE {BOOLEAN}) <> 0 OR sum(sign) FILTER (WHERE {UP}) <> 0
        ORDER BY experiment_id, name
        ON CONFLICT (experiment_id, name, writer) DO UPDATE
        SET n = r.n + excluded.n, booleans = r.booleans + excluded.booleans, ups = r.ups + excluded.ups;"""


INSERTED = f"SELECT experiment_id, name, numeric_value, value, 1 AS sign FROM new_rows WHERE {COUNTED}"
DELETED = f"SELECT experiment_id, name, numeric_value, value, -1 AS sign FROM old_rows WHERE {COUNTED}"

FORWARD = f"""
CREATE TABLE assessments_feedback_rollup (
    experiment_id bigint NOT NULL,
    name varchar(250) NOT NULL,
    writer integer NOT NULL,
    n bigint NOT NULL,
    booleans bigint NOT NULL,
    ups bigint NOT NULL,
    PRIMARY KEY (experiment_id, name, writer)
);

-- Folds the rows of backends that have gone into writer 0 (one statement: rows a new backend
-- with a recycled pid adds meanwhile are folded as they are, never lost).
CREATE FUNCTION assessments_feedback_rollup_compact() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM assessments_feedback_rollup
        WHERE writer <> 0 AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING experiment_id, name, n, booleans, ups
    )
    INSERT INTO assessments_feedback_rollup AS r (experiment_id, name, writer, n, booleans, ups)
    SELECT experiment_id, name, 0, sum(n), sum(booleans), sum(ups)
    FROM gone GROUP BY experiment_id, name ORDER BY experiment_id, name
    ON CONFLICT (experiment_id, name, writer) DO UPDATE
    SET n = r.n + excluded.n, booleans = r.booleans + excluded.booleans, ups = r.ups + excluded.ups;
$$;

CREATE FUNCTION assessments_feedback_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM assessments_feedback_rollup;
    ELSIF TG_OP = 'INSERT' THEN
        {upsert(INSERTED)}
        IF random() < 0.001 THEN
            PERFORM assessments_feedback_rollup_compact();
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        {upsert(DELETED)}
    ELSE
        {upsert(f"{INSERTED} UNION ALL {DELETED}")}
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER assessments_feedback_rollup_insert
    AFTER INSERT ON assessments_assessment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assessments_feedback_rollup();
CREATE TRIGGER assessments_feedback_rollup_update
    AFTER UPDATE ON assessments_assessment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assessments_feedback_rollup();
CREATE TRIGGER assessments_feedback_rollup_delete
    AFTER DELETE ON assessments_assessment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assessments_feedback_rollup();
CREATE TRIGGER assessments_feedback_rollup_truncate
    AFTER TRUNCATE ON assessments_assessment
    FOR EACH STATEMENT EXECUTE FUNCTION assessments_feedback_rollup();

-- The rows already there.
INSERT INTO assessments_feedback_rollup (experiment_id, name, writer, n, booleans, ups)
SELECT experiment_id, name, 0, count(*), count(*) FILTER (WHERE {BOOLEAN}), count(*) FILTER (WHERE {UP})
FROM assessments_assessment
WHERE {COUNTED}
GROUP BY experiment_id, name;
"""

BACKWARD = """
DROP TRIGGER assessments_feedback_rollup_insert ON assessments_assessment;
DROP TRIGGER assessments_feedback_rollup_update ON assessments_assessment;
DROP TRIGGER assessments_feedback_rollup_delete ON assessments_assessment;
DROP TRIGGER assessments_feedback_rollup_truncate ON assessments_assessment;
DROP FUNCTION assessments_feedback_rollup();
DROP FUNCTION assessments_feedback_rollup_compact();
DROP TABLE assessments_feedback_rollup;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("assessments", "0002_json_float_encoder"),
    ]

    operations = [postgresql_only(FORWARD, BACKWARD)]
