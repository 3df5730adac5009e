"""Who is acting and what they may do in an experiment.

Every entry point (pages, native API, MLflow protocol, OTLP, admin) turns its
caller into an `Actor`; services and selectors ask the actor for its role.
Roles, weakest first: viewer < reviewer < owner. An API key acts as `app`,
which may read and write everything in the experiments it is scoped to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from .models import ApiKey, Experiment, Membership

VIEWER, REVIEWER, OWNER, APP = "viewer", "reviewer", "owner", "app"
# An end user holding a public feedback token may add feedback in that token's experiment only
# (the public endpoint narrows it further to one trace); it is never the author of anything
# it could then edit, so change rights stay with reviewers.
END_USER = "end_user"
_RANK = {VIEWER: 1, REVIEWER: 2, OWNER: 3, APP: 3, END_USER: 2}


@dataclass
class Actor:
    """The user, API key or end user behind a write, plus the channel it came through."""

    user: object | None = None
    api_key: ApiKey | None = None
    end_user: str | None = None  # pseudonymous end-user id (public feedback tokens)
    system: str | None = None  # management commands, background jobs
    # experiment ids the key is scoped to; loaded once by the authentication class
    key_experiment_ids: frozenset[int] = field(default_factory=frozenset)
    _roles: dict[int, str | None] = field(default_factory=dict, repr=False)
    # Re-reads the key's experiment ids once when a role is asked for an experiment outside
    # them (the ids may come from the short-lived key cache of traces.authentication).
    _reload_scope: object | None = field(default=None, repr=False)

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(user=user)

    @classmethod
    def for_key(cls, api_key: ApiKey, experiment_ids=None, reload_scope=None) -> Actor:
        if experiment_ids is None:
            experiment_ids = api_key.experiments.values_list("pk", flat=True)
        return cls(api_key=api_key, key_experiment_ids=frozenset(experiment_ids), _reload_scope=reload_scope)

    @classmethod
    def for_end_user(cls, pseudonym: str, experiment_id: int) -> Actor:
        """An end user acting through a public feedback token scoped to one experiment."""
        return cls(end_user=pseudonym, key_experiment_ids=frozenset({experiment_id}))

    @classmethod
    def for_system(cls, name: str) -> Actor:
        return cls(system=name)

    @property
    def label(self) -> str:
        """How the actor appears in histories."""
        if self.user is not None:
            return self.user.get_username()
        if self.api_key is not None:
            return f"key:{self.api_key.label or self.api_key.prefix}"
        if self.end_user is not None:
            return f"end-user:{self.end_user}"
        return f"system:{self.system or 'unknown'}"

    @property
    def is_staff(self) -> bool:
        return bool(self.user is not None and self.user.is_active and self.user.is_staff)

    def role(self, experiment_id: int) -> str | None:
        """This actor's role in the experiment, or None when it may not see it (one query per experiment, cached)."""
        if experiment_id in self._roles:
            return self._roles[experiment_id]
        if self.system is not None:
            role = OWNER
        elif self.api_key is not None:
            if experiment_id not in self.key_experiment_ids and self._reload_scope is not None:
                self.key_experiment_ids = frozenset(self._reload_scope())
                self._reload_scope = None
            role = APP if experiment_id in self.key_experiment_ids else None
        elif self.end_user is not None:
            role = END_USER if experiment_id in self.key_experiment_ids else None
        elif self.user is not None and self.user.is_authenticated and self.user.is_active:
            if self.user.is_staff:
                role = OWNER
            else:
                role = (
                    Membership.objects.filter(user=self.user, experiment_id=experiment_id)
                    .values_list("role", flat=True)
                    .first()
                )
        else:
            role = None
        self._roles[experiment_id] = role
        return role

    @property
    def role_is_membership(self) -> bool:
        """Whether role() reads a membership row (a signed-in, active user who is not staff)."""
        return (
            self.system is None
            and self.api_key is None
            and self.end_user is None
            and self.user is not None
            and self.user.is_authenticated
            and self.user.is_active
            and not self.user.is_staff
        )

    def know_membership(self, experiment_id: int, role: str | None) -> None:
        """Take the membership role in the experiment that a selector read along with its own row
        (role() then needs no query). Only for actors whose role is their membership."""
        if self.role_is_membership:
            self._roles.setdefault(experiment_id, role)

    def can(self, experiment_id: int, needed: str) -> bool:
        role = self.role(experiment_id)
        return role is not None and _RANK[role] >= _RANK[needed]

    def require(self, experiment_id: int, needed: str) -> None:
        """Raise PermissionDenied unless the actor has at least role `needed` in the experiment."""
        if not self.can(experiment_id, needed):
            raise PermissionDenied(f"You need the {needed} role in this experiment.")

    def is_author_of(self, assessment) -> bool:
        if self.user is not None:
            return assessment.created_by_id == self.user.pk
        if self.api_key is not None:
            return assessment.created_by_key_id == self.api_key.pk
        return False


def visible_experiments(actor: Actor) -> QuerySet[Experiment]:
    """The experiments the actor may read."""
    if actor.system is not None or actor.is_staff:
        return Experiment.objects.all()
    if actor.api_key is not None:
        # Read through the scope table, not the cached ids: an experiment the key created a moment
        # ago through another worker is visible at once (traces.authentication caches ids for seconds).
        return Experiment.objects.filter(api_keys=actor.api_key.pk)
    if actor.user is not None and actor.user.is_authenticated:
        return Experiment.objects.filter(memberships__user=actor.user)
    return Experiment.objects.none()
