"""The rules that tie an end-user feedback token to its issuer and count its uses.

A token (assessments.public_api) is signed, not stored. Two decisions need the database:

- **Its issuer may still mint it.** A token minted with an API key dies when the key is revoked
  or no longer covers the token's experiment; one minted through a user's session dies when that
  user is deactivated, deleted or no longer has the reviewer role there (demoted, removed).
  Tokens signed before issuers were recorded (no `k` or `s` claim) cannot be tied and live until
  they expire (FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS at most).
- **A use is taken once.** Uses are counted in the token's own FeedbackToken row, so a spent
  token stays spent when moderation deletes the feedback it wrote; a conditional UPDATE takes
  the next use, so `max_uses` holds across workers and concurrent posts.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from traces.access import REVIEWER, Actor
from traces.models import ApiKey

from .models import FeedbackToken
from .selectors import used_idempotency_keys


def issuer_claims(actor: Actor) -> dict:
    """The claims that name who minted a token: `k` (API key id) or `s` (user id)."""
    return {
        "k": actor.api_key.pk if actor.api_key is not None else None,
        "s": actor.user.pk if actor.api_key is None and actor.user is not None else None,
    }


def issuer_refusal(claims: dict) -> str | None:
    """Why the token's issuer may no longer mint it, or None when it still may (one or two queries)."""
    experiment_id = claims["e"]
    if claims.get("k") is not None:
        key = ApiKey.objects.filter(pk=claims["k"]).only("revoked_at").first()
        if key is None or not key.is_active:
            return "The API key that issued this feedback token was revoked."
        if not key.experiments.filter(pk=experiment_id).exists():
            return "The API key that issued this feedback token no longer covers its experiment."
    if claims.get("s") is not None:
        user = get_user_model().objects.filter(pk=claims["s"]).first()
        if user is None or not user.is_active:
            return "The user who issued this feedback token was deactivated."
        if not Actor.for_user(user).can(experiment_id, REVIEWER):
            return "The user who issued this feedback token may no longer collect feedback in its experiment."
    return None


def public_idempotency_key(claims: dict, use: int) -> str:
    return f"public:{claims['j']}:{use}"


def take_use(claims: dict) -> int | None:
    """Take the token's next use (1, 2, …) in the caller's transaction; None when all are spent.

    The first use creates the token's row. A token used before uses were counted here starts
    from the highest use number its feedback still shows.
    """
    nonce = claims["j"]
    if not FeedbackToken.objects.filter(pk=nonce).exists():
        keys = [public_idempotency_key(claims, use) for use in range(1, claims["m"] + 1)]
        taken = [int(key.rsplit(":", 1)[1]) for key in used_idempotency_keys(claims["e"], keys)]
        FeedbackToken.objects.get_or_create(
            pk=nonce,
            defaults={
                "experiment_id": claims["e"],
                "trace_id": claims["t"],
                "max_uses": claims["m"],
                "uses": max(taken, default=0),
            },
        )
    taken_now = FeedbackToken.objects.filter(pk=nonce, uses__lt=F("max_uses")).update(
        uses=F("uses") + 1, last_used_at=timezone.now()
    )
    if not taken_now:
        return None
    # The UPDATE holds the row until the transaction ends: this is the use just taken.
    return FeedbackToken.objects.values_list("uses", flat=True).get(pk=nonce)
