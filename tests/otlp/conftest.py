"""Live-server fixtures for the OpenTelemetry exporter tests."""

from ..live_server import fh_live_server, key, live  # noqa: F401  (fixtures)
