"""Fewer indexes to maintain on every trace and span insert (docs/PERFORMANCE.md).

The foreign-key indexes of Trace.experiment and Span.trace duplicate the leading column of
trace_exp_time and span_unique_trace_span_id; client_request_id is indexed only where set.
On PostgreSQL, the `varchar_pattern_ops` copy Django adds for the character primary key goes
too: nothing searches trace ids with LIKE.
"""

import django.db.models.deletion
from django.db import migrations, models

from feedbackhub.migration_operations import postgresql_only

DROP_LIKE = 'DROP INDEX IF EXISTS "traces_trace_trace_id_f57b2925_like"'
CREATE_LIKE = 'CREATE INDEX IF NOT EXISTS "traces_trace_trace_id_f57b2925_like" ON "traces_trace" ("trace_id" varchar_pattern_ops)'


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0002_json_float_encoder"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="trace",
            name="trace_client_request_id",
        ),
        migrations.AlterField(
            model_name="span",
            name="trace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="spans", to="traces.trace"
            ),
        ),
        migrations.AlterField(
            model_name="trace",
            name="experiment",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="traces",
                to="traces.experiment",
            ),
        ),
        migrations.AddIndex(
            model_name="trace",
            index=models.Index(
                condition=models.Q(("client_request_id__isnull", False)),
                fields=["client_request_id"],
                name="trace_client_request_id",
            ),
        ),
        postgresql_only(DROP_LIKE, CREATE_LIKE),
    ]
