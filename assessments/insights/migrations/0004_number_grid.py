"""The hourly rollup keys numbers by a fixed grid: integers as they are (integer scales stay
exact), other numbers by the hundredth at or below them (floor: a bin edge on the grid splits
keys as it splits values), instead of rounded to 4 decimals.
Continuous scores made one row per hour and distinct value (~570k rows at 1M traces); on the
grid they make at most ~100 per hour and name. Sums (means) stay exact; ratings off the grid
count as `inexact` (insights 0002), so minimum, maximum and percentiles that must be exact
(MLflow's QueryTraceMetrics) are read live for them, and the insights page shows their
quantiles, minimum and maximum to the grid; its histograms, whose edges lie on the grid, count
traces exactly (docs/PERFORMANCE.md, "Insights"). A partial index finds the traces rated more
than once under a name (insights 0003's multiplicities), which the histograms count apart.

0002's table and trigger functions with the new key, rebuilt from the assessments. PostgreSQL only.
"""

from importlib import import_module

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

_0002 = import_module("assessments.insights.migrations.0002_hourly_kinds")
GRID = """CASE WHEN jsonb_typeof(c.value) <> 'number' OR c.numeric_value IS NULL THEN 0
                WHEN c.numeric_value = trunc(c.numeric_value) OR abs(c.numeric_value) >= 1e15 THEN c.numeric_value
                ELSE (floor(c.numeric_value::numeric * 100) / 100)::float8 END"""
assert _0002.FORWARD.count(_0002.NUMBER) >= 3
# The traces rated more than once under a name: the histograms' correction (selectors._histograms).
MULTI = """
CREATE INDEX insights_trace_values_multi ON insights_trace_values (name, trace_id) WHERE key = '' AND m > 1;
"""
FORWARD = _0002.FORWARD.replace(_0002.NUMBER, GRID) + MULTI
BACKWARD = "DROP INDEX insights_trace_values_multi;" + _0002.FORWARD


class Migration(migrations.Migration):
    dependencies = [("insights", "0003_distinct_traces")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
