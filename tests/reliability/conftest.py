"""Fixtures of the slow reliability tests (marker `reliability`): a private PostgreSQL instance,
a production gunicorn on it, and the figures they report at the end of the run.

They are skipped unless FEEDBACKHUB_RELIABILITY=1 (`make reliability`), because they start
their own PostgreSQL (initdb + pg_ctl) and gunicorn, SIGKILL them and stop the database.
"""

import json
import os
from pathlib import Path

import pytest

from .servers import Gunicorn, PostgresInstance, manage, production_env

ENABLED = os.environ.get("FEEDBACKHUB_RELIABILITY") == "1"
FIGURES: dict[str, dict] = {}


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="slow: set FEEDBACKHUB_RELIABILITY=1 (make reliability) to run")
    for item in items:
        if item.get_closest_marker("reliability") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(figures, sort_keys=True)}")
    target = os.environ.get("FEEDBACKHUB_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def figures():
    """name → dict of measured figures, printed at the end of the run (and written to
    $FEEDBACKHUB_RELIABILITY_REPORT when set)."""
    return FIGURES


@pytest.fixture(scope="session")
def private_postgres(tmp_path_factory):
    """A PostgreSQL instance of our own (temporary folder, own port), migrated, with one
    experiment and an API key for it: (instance, env, raw_key, experiment_id)."""
    instance = PostgresInstance()
    try:
        instance.init()
        env = production_env(instance.url)
        manage(env, "migrate", "--noinput")
        raw_key = manage(env, "createapikey", "--experiment", "reliability", "--create", "--label", "load").strip()
        [(experiment_id,)] = instance.query("SELECT id FROM traces_experiment WHERE name = 'reliability'")
        yield instance, env, raw_key, experiment_id
    finally:
        instance.destroy()


@pytest.fixture
def gunicorn(private_postgres, tmp_path):
    """Start a production gunicorn on the private instance; always stopped afterwards."""
    _, env, _, _ = private_postgres
    servers = []

    def start(**extra_env):
        server = Gunicorn({**env, **extra_env}, tmp_path)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
