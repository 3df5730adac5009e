"""The current definitions of each experiment, cached per worker process.

Every assessment write asks `rules_for(experiment_id)`. The answer is kept in this process;
after FEEDBACKHUB_DEFINITIONS_RECHECK_MS it compares the experiment's `definitions_stamp`
(one read by primary key) with the stamp it was loaded at, and reloads only when it changed.
A change made through this process drops its entry at once (and again on commit, so a read
racing the change's transaction cannot keep the old state).

Cost per write when fresh: a dict lookup and a clock read. Reading the stamp on every write
would cost about 7% of a single feedback's CPU (one more round trip on the one-statement
write path), hence the short trust period.

Several app servers sharing Redis (FEEDBACKHUB_REDIS_URL): the stamp is also kept there, set by
the change's commit, and every call compares with it (one Redis GET, no database read), so a
change made on any host is enforced on every host at once instead of within the trust period.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F

from traces.models import Experiment

from .models import DefinitionVersion
from .rules import Rule


@dataclass
class ExperimentRules:
    """An experiment's enforced definitions by name, its require flag and their stamp."""

    stamp: int
    require: bool
    rules: dict[str, Rule] = field(default_factory=dict)
    checked_at: float = 0.0

    def enforce(self, *, name: str, kind: str, value, error=None) -> int | None:
        """The definition version a write of `value` under `name` is stamped with (None: no
        definition); ValidationError naming the definition, version and rule otherwise.
        Feedback that carries only an error (no value) is checked for its name alone."""
        rule = self.rules.get(name)
        if rule is None:
            if self.require:
                raise ValidationError(
                    {"name": f"This experiment requires definitions, and {name!r} has none (define it first)."}
                )
            return None
        rule.check_kind(kind)
        if value is None and error is not None:
            return rule.version
        rule.check(value)
        return rule.version


_NOTHING = ExperimentRules(stamp=0, require=False)
_entries: dict[int, ExperimentRules] = {}


def forget_definitions(experiment_id: int | None = None) -> None:
    """Drop this process's cached definitions (of one experiment, or all)."""
    if experiment_id is None:
        _entries.clear()
    else:
        _entries.pop(experiment_id, None)


# A stale stamp can only stay in Redis through an eviction race (see _shared_stamp); this bounds it.
SHARED_STAMP_SECONDS = 300


def _shared_key(experiment_id: int) -> str:
    return f"definitions-stamp:{experiment_id}"


def _sharing() -> bool:
    return bool(getattr(settings, "FEEDBACKHUB_REDIS_URL", ""))


def changed(experiment_id: int, stamp: int | None = None) -> None:
    """Called by the definition services inside their transaction, with the new stamp."""
    forget_definitions(experiment_id)

    def committed():
        forget_definitions(experiment_id)
        if _sharing() and stamp is not None:
            shared_cache.set(_shared_key(experiment_id), stamp, timeout=SHARED_STAMP_SECONDS)

    transaction.on_commit(committed)


def _shared_stamp(experiment_id: int, entry: ExperimentRules | None) -> ExperimentRules | None:
    """The cached entry when Redis holds its stamp, else None (the caller reads the database and
    `add`s what it read: it never overwrites a newer stamp set by a commit in the meantime)."""
    stamp = shared_cache.get(_shared_key(experiment_id))
    return entry if entry is not None and stamp is not None and stamp == entry.stamp else None


def rules_for(experiment_id: int | None) -> ExperimentRules:
    """The experiment's current definitions (see the module docstring for freshness)."""
    if experiment_id is None:
        return _NOTHING
    entry = _entries.get(experiment_id)
    now = time.monotonic()
    sharing = _sharing()
    if sharing:
        if _shared_stamp(experiment_id, entry) is not None:
            return entry
    elif entry is not None and (now - entry.checked_at) * 1000 < settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS:
        return entry
    with connection.cursor() as cursor:
        cursor.execute(_stamp_sql(), [experiment_id])
        row = cursor.fetchone()
    if row is None:
        return _NOTHING
    stamp, require = row[0], bool(row[1])
    if stamp == 0:  # never had a definition: nothing to load
        entry = ExperimentRules(stamp=0, require=require)
    elif entry is None or entry.stamp != stamp or entry.require != require:
        entry = load(experiment_id, stamp=stamp, require=require)
    entry.checked_at = now
    _entries[experiment_id] = entry
    if sharing:
        shared_cache.add(_shared_key(experiment_id), stamp, timeout=SHARED_STAMP_SECONDS)
    return entry


@functools.cache
def _stamp_sql() -> str:
    """The stamp read, written out: compiling the ORM query cost more than running it."""
    quote, meta = connection.ops.quote_name, Experiment._meta
    return (
        f"SELECT {quote(meta.get_field('definitions_stamp').column)}, "
        f"{quote(meta.get_field('require_definitions').column)} "
        f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"
    )


def load(experiment_id: int, *, stamp: int = 0, require: bool = False) -> ExperimentRules:
    """The experiment's enforced definitions read from the database (one query)."""
    versions = (
        DefinitionVersion.objects.filter(
            definition__experiment_id=experiment_id,
            definition__archived_at__isnull=True,
            version=F("definition__current_version"),
        )
        .select_related("definition")
        .order_by()
    )
    return ExperimentRules(
        stamp=stamp, require=require, rules={version.definition.name: Rule.of(version) for version in versions}
    )


def value_types(experiment_ids) -> dict:
    """traces.filter_types source: {(kind, name): ValueType} of the experiments' definitions;
    a name the experiments define differently is left out."""
    from traces.filter_types import ValueType

    types, conflicting = {}, set()
    for experiment_id in experiment_ids:
        for rule in rules_for(experiment_id).rules.values():
            key = (rule.kind, rule.name)
            value_type = ValueType(rule.type, bool(rule.constraints.get("multiple")))
            if types.setdefault(key, value_type) != value_type:
                conflicting.add(key)
    return {key: value for key, value in types.items() if key not in conflicting}
