"""Fewer indexes to maintain on every feedback write (docs/PERFORMANCE.md).

A plain API write used to update 12 indexes on the assessment (13 defined) and 10 on its
revision; now 3 and 4 (6 defined on each; partial ones skip rows outside their condition).
Foreign keys led by a composite index (trace, experiment) lose their own; the ones set only
now and then (overrides, users) are partial; API keys are not indexed (nothing looks
assessments up by key; deleting a key, which is normally revoked instead, scans); the trace's
(trace, create_time) index goes (a trace's few assessments are sorted in memory); revision
lookups keep plain b-trees without Django's `_like` copies. On PostgreSQL, the `_like` copy of
the character primary key goes too.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from feedbackhub.migration_operations import postgresql_only

DROP_LIKE = 'DROP INDEX IF EXISTS "assessments_assessment_assessment_id_19640906_like"'
CREATE_LIKE = 'CREATE INDEX IF NOT EXISTS "assessments_assessment_assessment_id_19640906_like" ON "assessments_assessment" ("assessment_id" varchar_pattern_ops)'


class Migration(migrations.Migration):
    dependencies = [
        ("assessments", "0003_perf_feedback_rollup"),
        ("traces", "0003_index_diet"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="assessment",
            name="assessment_trace_time",
        ),
        migrations.AlterField(
            model_name="assessment",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="assessment",
            name="created_by_key",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="traces.apikey",
            ),
        ),
        migrations.AlterField(
            model_name="assessment",
            name="experiment",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="traces.experiment"
            ),
        ),
        migrations.AlterField(
            model_name="assessment",
            name="overrides",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="overridden_by",
                to="assessments.assessment",
            ),
        ),
        migrations.AlterField(
            model_name="assessment",
            name="trace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="assessments",
                to="traces.trace",
            ),
        ),
        migrations.AlterField(
            model_name="revision",
            name="actor_key",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="traces.apikey",
            ),
        ),
        migrations.AlterField(
            model_name="revision",
            name="actor_user",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="revision",
            name="assessment_id",
            field=models.CharField(max_length=50),
        ),
        migrations.AlterField(
            model_name="revision",
            name="related_assessment_id",
            field=models.CharField(blank=True, max_length=50, null=True),
        ),
        migrations.AlterField(
            model_name="revision",
            name="trace_id",
            field=models.CharField(max_length=35),
        ),
        migrations.AddIndex(
            model_name="assessment",
            index=models.Index(
                condition=models.Q(("overrides__isnull", False)), fields=["overrides"], name="assessment_overrides"
            ),
        ),
        migrations.AddIndex(
            model_name="assessment",
            index=models.Index(
                condition=models.Q(("created_by__isnull", False)), fields=["created_by"], name="assessment_created_by"
            ),
        ),
        migrations.AddIndex(
            model_name="revision",
            index=models.Index(fields=["assessment_id"], name="revision_assessment"),
        ),
        migrations.AddIndex(
            model_name="revision",
            index=models.Index(
                condition=models.Q(("related_assessment_id__isnull", False)),
                fields=["related_assessment_id"],
                name="revision_related_assessment",
            ),
        ),
        migrations.AddIndex(
            model_name="revision",
            index=models.Index(fields=["trace_id"], name="revision_trace"),
        ),
        migrations.AddIndex(
            model_name="revision",
            index=models.Index(
                condition=models.Q(("actor_user__isnull", False)), fields=["actor_user"], name="revision_actor_user"
            ),
        ),
        postgresql_only(DROP_LIKE, CREATE_LIKE),
    ]
