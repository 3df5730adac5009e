"""The duration sort's index in the order the list asks for (PostgreSQL).

`selectors.keyset_page` sorts by duration `DESC NULLS LAST` (traces still running come last),
which the model's `(-execution_time_ms)` index (DESC is NULLS FIRST) cannot serve: sorting a
million-trace experiment by duration took a parallel scan and a sort (238 ms) instead of an
index walk (0.2 ms). Django's Index cannot say NULLS LAST portably (SQLite's CREATE INDEX has
no such clause), so on PostgreSQL the index of the same name is rebuilt here; elsewhere the
model's definition stays.
"""

from django.db import migrations

from feedbackhub.migration_operations import postgresql_only

FORWARD = """
DROP INDEX IF EXISTS trace_exp_duration;
CREATE INDEX trace_exp_duration ON traces_trace (experiment_id, execution_time_ms DESC NULLS LAST, trace_id);
"""
BACKWARD = """
DROP INDEX IF EXISTS trace_exp_duration;
CREATE INDEX trace_exp_duration ON traces_trace (experiment_id, execution_time_ms DESC, trace_id);
"""


class Migration(migrations.Migration):
    dependencies = [("traces", "0003_index_diet")]

    operations = [postgresql_only(FORWARD, BACKWARD)]
