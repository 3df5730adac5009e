"""Django's database sessions (same table, rows and cookie) with the one read every signed-in
request makes written out: `Session.objects.get(…)` cost about 1 ms of CPU to build per request,
more than PostgreSQL spends answering it (a review queue's `next` spent a fifth of its CPU
there). Saving, rotating and deleting sessions stay Django's. SESSION_ENGINE names this module."""

from __future__ import annotations

import functools

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        """The unexpired session row of this key (only its data loaded), or None (then the key is
        forgotten, as Django's own read does)."""
        connection = connections[router.db_for_read(self.model)]
        with connection.cursor() as cursor:
            cursor.execute(
                _read_sql(connection.alias),
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=row[0])


@functools.cache
def _read_sql(alias: str) -> str:
    from django.contrib.sessions.models import Session

    quote = connections[alias].ops.quote_name
    meta = Session._meta
    return (
        f"SELECT {quote(meta.get_field('session_data').column)} FROM {quote(meta.db_table)} "
        f"WHERE {quote(meta.pk.column)} = %s AND {quote(meta.get_field('expire_date').column)} > %s"
    )
