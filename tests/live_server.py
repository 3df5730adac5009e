"""A live FeedbackHub for tests that drive real clients over HTTP (mlflow, OpenTelemetry).

Import the fixtures into a conftest: `from ..live_server import fh_live_server, live`.
"""

import pytest
from django.core.servers.basehttp import WSGIServer

from .factories import make_api_key


class SerialWSGIServer(WSGIServer):
    """Handles one request at a time (and closes each connection).

    With SQLite's in-memory test database the live server shares the test's single
    connection between threads, so concurrent requests would interleave transactions
    on it. PostgreSQL runs Django's usual threaded live server, races included.
    """

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


@pytest.fixture(scope="session")
def fh_live_server(django_db_setup, django_db_blocker):
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1", start=False)
    if server.thread.connections_override:
        server.thread.server_class = SerialWSGIServer
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live(fh_live_server, transactional_db, settings):
    """The live server's base URL, for a test whose rows it must see (transactional DB)."""
    settings.SECURE_SSL_REDIRECT = False
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    return fh_live_server.url


@pytest.fixture
def key(live, experiment):
    """(ApiKey, raw secret) scoped to the `experiment` fixture."""
    return make_api_key(experiment)
