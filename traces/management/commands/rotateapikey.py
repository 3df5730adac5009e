"""`manage.py rotateapikey PREFIX [--grace-seconds N]`: replace an API key without downtime."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from traces import services
from traces.access import Actor
from traces.models import ApiKey


class Command(BaseCommand):
    help = (
        "Create a new API key with the same experiments and label as the key whose prefix is given, "
        "and keep the old key working for a grace period (FEEDBACKHUB_KEY_ROTATION_GRACE_SECONDS by "
        "default). The new key goes to stdout alone; everything else to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The first characters of the key (shown in the admin), e.g. fh_AbCdEfG.")
        parser.add_argument(
            "--grace-seconds", type=int, default=None, help="How long the old key keeps working (0: stop it now)."
        )

    def handle(self, *args, prefix, grace_seconds, **options):
        keys = list(ApiKey.objects.filter(prefix__startswith=prefix, revoked_at__isnull=True)[:2])
        if len(keys) != 1:
            raise CommandError(f"{len(keys) or 'No'} unrevoked keys start with {prefix!r}; give a longer prefix.")
        try:
            new_key, raw = services.rotate_api_key(
                api_key=keys[0], actor=Actor.for_system("rotateapikey"), grace_seconds=grace_seconds
            )
        except (ValidationError, services.Conflict) as exc:
            raise CommandError(str(exc)) from None
        old = keys[0]
        self.stderr.write(
            f"New key {new_key.prefix}… replaces {old.prefix}…, which works until {old.revoked_at:%Y-%m-%d %H:%M:%S %Z}"
            f" ({timedelta(seconds=round((old.revoked_at - new_key.created_at).total_seconds()))} from now)."
            " The new key is shown only now; store it safely:"
        )
        self.stdout.write(raw)
