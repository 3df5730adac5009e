"""Migration operations the apps share (imported by migrations: keep the signatures stable)."""

from django.db import migrations


def postgresql_only(forward: str, backward: str) -> migrations.RunPython:
    """Run raw SQL on PostgreSQL and nothing elsewhere (SQLite keeps the model's definition)."""

    def run(sql):
        def operation(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql, params=None)

        return operation

    return migrations.RunPython(run(forward), run(backward))
