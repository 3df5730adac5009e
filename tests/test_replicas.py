"""feedbackhub.replicas: which database a read goes to, when a replica is skipped, and the rerun on
the primary when a replica fails mid-view. The real thing (a pg_basebackup replica, stopped under
load) is tests/reliability/test_scaling.py."""

import pytest
from django.db import DEFAULT_DB_ALIAS
from django.db.utils import OperationalError

from feedbackhub import replicas


class FakeCursor:
    def __init__(self, lag=None, error=None):
        self.lag, self.error = lag, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql):
        if self.error:
            raise self.error

    def fetchone(self):
        return (self.lag,)


class FakeConnection:
    def __init__(self, lag=0.0, error=None):
        self.lag, self.error, self.errors_occurred, self.closed = lag, error, False, 0

    def cursor(self):
        return FakeCursor(self.lag, self.error)

    def close(self):
        self.closed += 1


@pytest.fixture
def one_replica(monkeypatch, settings):
    """A configured replica1 (fake connection), fresh health for every test."""
    settings.FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS = 10
    settings.FEEDBACKHUB_REPLICA_CHECK_SECONDS = 60
    fake = {"replica1": FakeConnection()}
    monkeypatch.setattr(replicas, "replica_aliases", lambda: ["replica1"])
    monkeypatch.setattr(replicas, "connections", fake)
    replicas.forget_health()
    yield fake
    replicas.forget_health()


def test_reads_and_writes_go_to_the_primary_outside_a_marked_block(one_replica):
    router = replicas.ReplicaRouter()
    assert router.db_for_read(None) == DEFAULT_DB_ALIAS
    with replicas.replica_reads():
        assert router.db_for_read(None) == "replica1"
        assert router.db_for_write(None) == DEFAULT_DB_ALIAS  # even for an object read from the replica
    assert router.db_for_read(None) == DEFAULT_DB_ALIAS
    assert router.allow_migrate("replica1", "traces") is False and router.allow_migrate("default", "traces")


def test_a_block_keeps_the_replica_it_chose_and_checks_health_once_per_period(one_replica, monkeypatch):
    checks = []
    real_check = replicas.check
    monkeypatch.setattr(replicas, "check", lambda alias: checks.append(alias) or real_check(alias))
    for _ in range(3):
        with replicas.replica_reads():
            assert {replicas.read_alias() for _ in range(5)} == {"replica1"}
    assert checks == ["replica1"]


@pytest.mark.parametrize(
    "connection, healthy",
    [
        (FakeConnection(lag=0.5), True),
        (FakeConnection(lag=11.0), False),  # behind by more than FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS
        (FakeConnection(error=OperationalError("connection refused")), False),
    ],
)
def test_a_lagging_or_unreachable_replica_is_skipped(one_replica, connection, healthy):
    one_replica["replica1"] = connection
    with replicas.replica_reads():
        assert replicas.read_alias() == ("replica1" if healthy else DEFAULT_DB_ALIAS)


def test_a_replica_failing_mid_view_is_marked_down_and_the_view_reruns_on_the_primary(one_replica):
    seen = []

    @replicas.reads_from_replica
    def view():
        alias = replicas.read_alias()
        seen.append(alias)
        if alias == "replica1":
            one_replica["replica1"].errors_occurred = True  # what Django's error wrapper records
            raise OperationalError("server closed the connection unexpectedly")
        return "answered"

    assert view() == "answered"
    assert seen == ["replica1", DEFAULT_DB_ALIAS]
    assert one_replica["replica1"].closed == 1
    with replicas.replica_reads():  # skipped until its next check is due
        assert replicas.read_alias() == DEFAULT_DB_ALIAS


def test_an_error_on_the_primary_is_not_rerun(one_replica):
    one_replica["replica1"] = FakeConnection(error=OperationalError("down"))
    calls = []

    @replicas.reads_from_replica
    def view():
        calls.append(replicas.read_alias())
        raise OperationalError("the primary is away")

    with pytest.raises(OperationalError):
        view()
    assert calls == [DEFAULT_DB_ALIAS]


def test_without_replicas_a_marked_view_just_runs(settings):
    assert replicas.replica_aliases() == []

    @replicas.reads_from_replica
    def view():
        return replicas.read_alias()

    assert view() == DEFAULT_DB_ALIAS
