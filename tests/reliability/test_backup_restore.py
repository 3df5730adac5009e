"""scripts/backup_restore.sh: pg_dump, restore into a scratch database, compare row counts.

Runs on PostgreSQL only (the CI run with DATABASE_URL); the version under live load (marker
`reliability`) runs against the private instance behind gunicorn.
"""

import os
import shutil
import subprocess
import time

import pytest
from django.db import connection

from ..factories import make_experiment, make_feedback, make_trace

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "backup_restore.sh")

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql" or not shutil.which("pg_dump"),
    reason="the backup script needs PostgreSQL (DATABASE_URL=postgres://…) and pg_dump",
)


def database_url() -> str:
    settings = connection.settings_dict
    auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{auth}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


def run_script(*args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env)


def table_counts(output: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("OK"):
            rows[parts[0]] = (parts[1], parts[2])
    return rows


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_backup_restores_with_identical_row_counts(tmp_path):
    experiment = make_experiment()
    for n in range(5):
        make_feedback(make_trace(experiment, spans=3), value=n)

    result = run_script(database_url(), env_extra={"BACKUP_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stdout + result.stderr
    counts = table_counts(result.stdout)
    assert counts["traces_trace"] == ("5", "5") and counts["traces_span"] == ("15", "15")
    assert counts["assessments_assessment"] == ("5", "5") and counts["assessments_revision"] == ("5", "5")
    [dump] = list(tmp_path.glob("feedbackhub-*.dump"))
    assert dump.stat().st_size > 0 and f"OK {dump}" in result.stdout
    scratch = connection.settings_dict["NAME"] + "_restore_check"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone()[0] == 0  # the scratch database is dropped afterwards


def test_backup_script_refuses_a_non_postgres_url(tmp_path):
    result = run_script("sqlite:///db.sqlite3", env_extra={"BACKUP_DIR": str(tmp_path), "DATABASE_URL": ""})
    assert result.returncode == 2 and "usage" in result.stderr


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_backup_of_an_unreachable_database_fails(tmp_path):
    url = database_url().rsplit("/", 1)[0] + "/no_such_database_fh"
    result = run_script(url, env_extra={"BACKUP_DIR": str(tmp_path)})
    assert result.returncode != 0 and "OK" not in result.stdout


@pytest.mark.reliability
def test_backup_under_live_load_matches_its_snapshot(private_postgres, gunicorn, tmp_path, figures):
    """The dump and the source counts share one snapshot, so they agree while the app writes."""
    from .load import Load

    pg, env, raw_key, experiment_id = private_postgres
    server = gunicorn()
    load = Load(server.base, raw_key, experiment_id, clients=2)
    load.start()
    assert load.wait_for_acknowledged(30, 20) >= 30
    started = time.monotonic()
    result = run_script(pg.url, env_extra={"BACKUP_DIR": str(tmp_path)})
    seconds = time.monotonic() - started
    load.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    writes_during = sum(1 for a in load.attempts if a.acknowledged and a.started >= started)
    assert writes_during > 0, "the backup ran on an idle database"
    counts = table_counts(result.stdout)
    figures["backup_under_load"] = {
        "seconds": round(seconds, 2),
        "acknowledged_writes_during_backup": writes_during,
        "rows": {
            table: int(source) for table, (source, _) in counts.items() if table.startswith(("traces_", "assessments_"))
        },
    }
